"""The one configuration loader (SPEC §2).

Precedence, lowest first: built-in defaults → ``config/default.toml`` →
``config/<STATESET_ENV>.toml`` → the file ``STATESET_CONFIG`` names (a mounted configuration) →
environment variables. ``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``ALLOWED_HOSTS`` and
``DEBUG`` are honoured as usual; any key can be overridden as ``STATESET__SECTION__KEY`` (nested
tables with more ``__``: ``STATESET__CACHE__ENTITIES__ORDERS=60``). Every value is checked against
the schema below; a bad one raises :class:`ConfigError` naming the key, which stops start-up.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
CONFIG_DIR = BASE_DIR / "config"
ENV_PREFIX = "STATESET__"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid. The message names the key."""


@dataclass(frozen=True)
class Field:
    default: Any
    parse: Callable[[str, Any], Any]


# --- value parsers: (key, raw) -> value; raw is a TOML value or an environment string ------------


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[str, Any], int]:
    def parse(key: str, raw: Any) -> int:
        if isinstance(raw, bool):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}")
        if isinstance(raw, str):
            try:
                raw = int(raw.strip())
            except ValueError:
                raise ConfigError(f"{key}: expected an integer, got {raw!r}") from None
        if not isinstance(raw, int):
            raise ConfigError(f"{key}: expected an integer, got {raw!r}")
        if minimum is not None and raw < minimum:
            raise ConfigError(f"{key}: must be >= {minimum}, got {raw}")
        if maximum is not None and raw > maximum:
            raise ConfigError(f"{key}: must be <= {maximum}, got {raw}")
        return raw

    return parse


def _bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        value = raw.strip().lower()
        if value in {"1", "true", "yes", "on"}:
            return True
        if value in {"0", "false", "no", "off", ""}:
            return False
    raise ConfigError(f"{key}: expected a boolean (true/false), got {raw!r}")


def _str(key: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ConfigError(f"{key}: expected a string, got {raw!r}")
    return raw


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        value = _str(key, raw).strip()
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}; got {raw!r}")
        return value

    return parse


def _url(*schemes: str) -> Callable[[str, Any], str]:
    def parse(key: str, raw: Any) -> str:
        value = _str(key, raw).strip()
        if value and urlsplit(value).scheme not in schemes:
            raise ConfigError(f"{key}: expected a URL with scheme {'/'.join(schemes)}, got {raw!r}")
        return value

    return parse


def _list(item: Callable[[str, Any], Any]) -> Callable[[str, Any], list[Any]]:
    def parse(key: str, raw: Any) -> list[Any]:
        if isinstance(raw, str):
            text = raw.strip()
            if text.startswith("["):
                try:
                    raw = json.loads(text)
                except json.JSONDecodeError:
                    raise ConfigError(f"{key}: expected a JSON list, got {text!r}") from None
            else:
                raw = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(raw, list):
            raise ConfigError(f"{key}: expected a list, got {raw!r}")
        return [item(f"{key}[{i}]", value) for i, value in enumerate(raw)]

    return parse


def _rate(key: str, raw: Any) -> str:
    value = _str(key, raw).strip()
    if value:
        parse_rate(value, key=key)
    return value


def parse_rate(value: str, *, key: str = "rate") -> tuple[int, int]:
    """``"6000/min"`` → ``(6000, 60)`` (requests, window seconds)."""
    periods = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
               "hour": 3600, "d": 86400, "day": 86400}
    count, _, period = value.partition("/")
    try:
        requests = int(count)
    except ValueError:
        requests = 0
    if requests < 1 or period not in periods:
        raise ConfigError(f"{key}: expected '<count>/<s|min|hour|day>', got {value!r}")
    return requests, periods[period]


def _tax_rates(key: str, raw: Any) -> dict[str, str]:
    """``[tax.rates]``: ``"COUNTRY"`` or ``"COUNTRY-REGION"`` (ISO 3166 codes, upper case) → a
    decimal rate in [0, 1) as a string (``"0.08875"``). From the environment: a JSON object."""
    from decimal import Decimal, InvalidOperation

    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError:
            raise ConfigError(f"{key}: expected a JSON object of rates, got {raw!r}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: expected a table of rates, got {raw!r}")
    rates: dict[str, str] = {}
    for place, value in raw.items():
        name = f"{key}.{place}"
        code = str(place).strip().upper()
        country, _, region = code.partition("-")
        if (len(country) != 2 or not country.isalpha()
            or (region and not (1 <= len(region) <= 3 and region.isalnum()))):
            raise ConfigError(
                f"{name}: expected COUNTRY or COUNTRY-REGION (e.g. US-NY), got {place!r}")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(
                f"{name}: expected a decimal rate such as \"0.08875\", got {value!r}") from None
        if isinstance(value, bool) or not rate.is_finite() or not 0 <= rate < 1:
            raise ConfigError(f"{name}: a rate is at least 0 and below 1, got {value!r}")
        rates[code] = str(rate)
    return rates


def _pepper(key: str, raw: Any) -> str:
    value = _str(key, raw)
    if value and len(value) < 32:
        raise ConfigError(f"{key}: at least 32 characters (it keys every stored API-key hash)")
    return value


# Keys shipped in this repository's files or commonly left in place: never a production key.
KNOWN_SECRET_KEYS = frozenset({"change-me-in-production", "changeme", "change-me", "secret",
                               "build", "development", "dev", "test", "insecure"})
MIN_SECRET_KEY_LENGTH = 50


def secret_key_problem(key: str) -> str:
    """Why ``key`` is not fit for production ("" when it is): missing, a known default, Django's
    generated development prefix, shorter than 50 characters or fewer than 5 distinct ones (the
    same bar as Django's ``check --deploy``)."""
    if not key:
        return "required when STATESET_ENV=production (SECRET_KEY)"
    if key.strip().lower() in KNOWN_SECRET_KEYS:
        return "is a known default value; set SECRET_KEY to 50+ random characters"
    if key.startswith("django-insecure"):
        return "is a development key (django-insecure-…); set SECRET_KEY to 50+ random characters"
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5:
        return f"is too weak: use at least {MIN_SECRET_KEY_LENGTH} random characters"
    return ""


_PG = _url("postgres", "postgresql")
_REDIS = _url("redis", "rediss", "unix")
_ENTITY_TTL = _int(minimum=0, maximum=7 * 86400)

SCHEMA: dict[str, dict[str, Field]] = {
    "app": {
        "env": Field("development", _str),
        "debug": Field(False, _bool),
        "secret_key": Field("", _str),
        # The HMAC key of stored API-key hashes; empty = derived from secret_key
        # (docs/decisions.md).
        "key_pepper": Field("", _pepper),
        "allowed_hosts": Field(["127.0.0.1", "localhost"], _list(_str)),
        "time_zone": Field("UTC", _str),
        "slow_request_ms": Field(500, _int(minimum=1)),
    },
    "database": {
        "url": Field("", _PG),
        "max_connections": Field(10, _int(minimum=1, maximum=1000)),
        "min_connections": Field(2, _int(minimum=0, maximum=1000)),
        "connect_timeout": Field(30, _int(minimum=1)),
        "idle_timeout": Field(600, _int(minimum=1)),
        "max_lifetime": Field(1800, _int(minimum=1)),
        "statement_cache_size": Field(100, _int(minimum=0)),
        "replica_urls": Field([], _list(_PG)),
        "read_preference": Field("round_robin", _choice("round_robin", "random", "primary")),
        # A replica replaying further behind than this (seconds) is skipped until it catches up.
        "max_replica_lag": Field(5, _int(minimum=0, maximum=86400)),
        # Behind PgBouncer in transaction mode: no server-side prepared statements or cursors.
        "pgbouncer": Field(False, _bool),
    },
    "cache": {
        "enabled": Field(True, _bool),
        "redis_url": Field("", _REDIS),
        "default_ttl": Field(3600, _int(minimum=0)),
    },
    "cache.entities": {
        "products": Field(3600, _ENTITY_TTL),
        "customers": Field(1800, _ENTITY_TTL),
        "inventory": Field(300, _ENTITY_TTL),
        "orders": Field(600, _ENTITY_TTL),
    },
    "redis": {
        "url": Field("", _REDIS),
        "pool_size": Field(20, _int(minimum=1)),
        "timeout": Field(100, _int(minimum=1, maximum=60_000)),
    },
    "celery": {
        "broker_url": Field("", _url("redis", "rediss", "amqp", "memory")),
        "always_eager": Field(False, _bool),
        # A worker serves its Prometheus series on this port (0: off); see stateset.celery.
        "metrics_port": Field(0, _int(minimum=0, maximum=65535)),
    },
    "telemetry": {
        "enabled": Field(False, _bool),
        "endpoint": Field("http://localhost:4317", _url("http", "https")),
        "service_name": Field("stateset-api", _str),
        "protocol": Field("grpc", _choice("grpc", "http/protobuf")),
    },
    "api": {
        "default_page_size": Field(20, _int(minimum=1, maximum=1000)),
        "max_page_size": Field(100, _int(minimum=1, maximum=1000)),
        "idempotency_ttl": Field(86400, _int(minimum=60)),
        "rate_limit": Field("", _rate),
        "max_body_bytes": Field(1024 * 1024, _int(minimum=1024)),
        "exact_count_limit": Field(10000, _int(minimum=100)),
        "auth_failure_limit": Field("30/min", _rate),
        "trusted_proxies": Field(0, _int(minimum=0, maximum=10)),
    },
    "tax": {
        "prices_include_tax": Field(False, _bool),
        "shipping_taxable": Field(False, _bool),
        "rates": Field({}, _tax_rates),
    },
    "webhooks": {
        "allow_private_targets": Field(False, _bool),
        "timeout": Field(10, _int(minimum=1, maximum=60)),
        "max_attempts": Field(8, _int(minimum=1, maximum=20)),
        "backoff_seconds": Field(30, _int(minimum=1)),
        "retention_days": Field(30, _int(minimum=1)),
        "disable_after": Field(100, _int(minimum=1)),
        "rotation_overlap": Field(86400, _int(minimum=0)),
    },
    "imports": {
        "max_bytes": Field(50 * 1024 * 1024, _int(minimum=1024)),
        "batch_size": Field(1000, _int(minimum=1, maximum=10_000)),
    },
}

# Conventional variables, mapped onto the schema.
CONVENTIONAL_ENV = {
    "DATABASE_URL": "database.url",
    "REDIS_URL": "redis.url",
    "SECRET_KEY": "app.secret_key",
    "STATESET_KEY_PEPPER": "app.key_pepper",
    "ALLOWED_HOSTS": "app.allowed_hosts",
    "DEBUG": "app.debug",
}


def _flatten(data: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, Any]:
    """TOML tables → ``{"section.key": value}``; unknown keys are errors, not silently ignored."""
    flat: dict[str, Any] = {}
    for name, value in data.items():
        dotted = f"{prefix}{name}"
        section, _, key = dotted.rpartition(".")
        if isinstance(value, dict) and not (section in SCHEMA and key in SCHEMA[section]):
            if dotted not in SCHEMA:
                raise ConfigError(f"{dotted}: unknown section in {source}")
            flat.update(_flatten(value, source, f"{dotted}."))
            continue
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise ConfigError(f"{dotted}: unknown key in {source}")
        flat[dotted] = value
    return flat


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return _flatten(tomllib.load(handle), str(path))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name, dotted in CONVENTIONAL_ENV.items():
        if environ.get(name):
            raw[dotted] = environ[name]
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        section, key = ".".join(parts[:-1]), parts[-1]
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise ConfigError(f"{'.'.join(parts)}: unknown key (from environment variable {name})")
        raw[f"{section}.{key}"] = value
    return raw


class Config(dict[str, dict[str, Any]]):
    """``config["database"]["max_connections"]``; sections are plain dicts."""

    def get_value(self, dotted: str) -> Any:
        section, _, key = dotted.rpartition(".")
        return self[section][key]


def load(environ: Mapping[str, str] | None = None, config_dir: Path = CONFIG_DIR) -> Config:
    environ = os.environ if environ is None else environ
    env_name = environ.get("STATESET_ENV", "development").strip() or "development"
    layers: list[dict[str, Any]] = []
    default_file = config_dir / "default.toml"
    if default_file.exists():
        layers.append(_read_toml(default_file))
    env_file = config_dir / f"{env_name}.toml"
    if env_file.exists():
        layers.append(_read_toml(env_file))
    mounted = environ.get("STATESET_CONFIG", "").strip()
    if mounted:
        if not Path(mounted).is_file():
            raise ConfigError(f"STATESET_CONFIG: no such file: {mounted}")
        layers.append(_read_toml(Path(mounted)))
    layers.append(_env_overrides(environ))

    config = Config({section: {k: f.default for k, f in fields.items()} for section,
                     fields in SCHEMA.items()})
    config["app"]["env"] = env_name
    for layer in layers:
        for dotted, raw in layer.items():
            section, _, key = dotted.rpartition(".")
            config[section][key] = SCHEMA[section][key].parse(dotted, raw)

    database = config["database"]
    if database["min_connections"] > database["max_connections"]:
        raise ConfigError(
            "database.min_connections: must not exceed database.max_connections "
            f"({database['min_connections']} > {database['max_connections']})"
        )
    api = config["api"]
    if api["default_page_size"] > api["max_page_size"]:
        raise ConfigError("api.default_page_size: must not exceed api.max_page_size")
    return config
