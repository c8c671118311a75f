from pathlib import Path

import pytest

from stateset.config import ConfigError, load


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_defaults_then_file_then_env_file_then_environment(tmp_path):
    write(tmp_path, "default.toml",
          "[database]\nmax_connections = 20\nmin_connections = 1\n[api]\ndefault_page_size = 30\n")
    write(tmp_path, "staging.toml", "[database]\nmax_connections = 30\n")
    env = {"STATESET_ENV": "staging", "STATESET__API__DEFAULT_PAGE_SIZE": "40",
           "DATABASE_URL": "postgres://u:p@db:5432/app"}
    config = load(env, tmp_path)
    assert config["database"]["max_connections"] == 30  # env file beats default.toml
    assert config["database"]["min_connections"] == 1  # default.toml beats built-in default (2)
    assert config["api"]["default_page_size"] == 40  # environment beats both files
    assert config["api"]["max_page_size"] == 100  # built-in default
    assert config["database"]["url"] == "postgres://u:p@db:5432/app"
    assert config["app"]["env"] == "staging"


def test_stateset_variable_beats_conventional_one_and_reaches_nested_tables(tmp_path):
    env = {"REDIS_URL": "redis://a:6379/0", "STATESET__REDIS__URL": "redis://b:6379/1",
           "STATESET__CACHE__ENTITIES__ORDERS": "60"}
    config = load(env, tmp_path)
    assert config["redis"]["url"] == "redis://b:6379/1"
    assert config["cache.entities"]["orders"] == 60


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STATESET__DATABASE__MAX_CONNECTIONS": "lots"}, "database.max_connections"),
        ({"STATESET__DATABASE__MAX_CONNECTIONS": "0"}, "database.max_connections"),
        ({"STATESET__DATABASE__READ_PREFERENCE": "nearest"}, "database.read_preference"),
        ({"STATESET__CACHE__ENABLED": "maybe"}, "cache.enabled"),
        ({"STATESET__API__RATE_LIMIT": "fast"}, "api.rate_limit"),
        ({"DATABASE_URL": "mysql://x/y"}, "database.url"),
        ({"STATESET__DATABASE__NO_SUCH_KEY": "1"}, "database.no_such_key"),
        ({"STATESET__DATABASE__MIN_CONNECTIONS": "50"}, "database.min_connections"),
    ],
)
def test_a_bad_value_stops_loading_and_names_the_key(tmp_path, env, named):
    with pytest.raises(ConfigError) as error:
        load(env, tmp_path)
    assert named in str(error.value)


def test_bad_value_in_a_file_names_the_key(tmp_path):
    write(tmp_path, "default.toml", '[api]\nmax_page_size = "many"\n')
    with pytest.raises(ConfigError, match="api.max_page_size"):
        load({}, tmp_path)
    write(tmp_path, "default.toml", "[api]\nunknown = 1\n")
    with pytest.raises(ConfigError, match="api.unknown"):
        load({}, tmp_path)


def test_replica_urls_parse_from_a_comma_list(tmp_path):
    env = {"STATESET__DATABASE__REPLICA_URLS": "postgres://r1/app, postgres://r2/app"}
    assert load(env, tmp_path)["database"]["replica_urls"] == ["postgres://r1/app",
                                                               "postgres://r2/app"]


def test_the_shipped_config_files_load():
    config = load({"DATABASE_URL": "postgres://x/y"})
    assert config["cache.entities"] == {"products": 3600, "customers": 1800, "inventory": 300,
                                        "orders": 600}


def test_django_refuses_to_start_on_a_bad_value():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c",
         "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='stateset.settings'; "
         "django.setup()"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "postgres://x/y",
             "STATESET__DATABASE__MAX_CONNECTIONS": "-3", "STATESET_DATA_DIR": "/tmp"},
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode != 0
    assert "database.max_connections" in result.stderr


def test_tax_rates_come_from_the_mounted_config_file_after_the_env_file(tmp_path):
    write(tmp_path, "default.toml", '[tax]\nshipping_taxable = false\n[tax.rates]\n"GB" = "0.20"\n')
    mounted = tmp_path / "mounted.toml"
    mounted.write_text('[tax]\nprices_include_tax = true\nshipping_taxable = true\n'
                       '[tax.rates]\n"us-ny" = "0.08875"\n"US" = 0.04\n')
    config = load({"STATESET_CONFIG": str(mounted)}, tmp_path)
    assert config["tax"]["prices_include_tax"] is True and config["tax"]["shipping_taxable"] is True
    # the later file's table replaces
    assert config["tax"]["rates"] == {"US-NY": "0.08875", "US": "0.04"}
    env = load({"STATESET_CONFIG": str(mounted), "STATESET__TAX__SHIPPING_TAXABLE": "false"},
               tmp_path)
    assert env["tax"]["shipping_taxable"] is False  # the environment still wins


@pytest.mark.parametrize("rates, named", [
    ('"USA" = "0.1"', "tax.rates.USA"),
    ('"US-NY" = "1.5"', "tax.rates.US-NY"),
    ('"US-NY" = "lots"', "tax.rates.US-NY"),
    ('"GB" = true', "tax.rates.GB"),
])
def test_a_bad_tax_rate_stops_start_up_naming_it(tmp_path, rates, named):
    write(tmp_path, "default.toml", f"[tax.rates]\n{rates}\n")
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load({}, tmp_path)


def test_a_missing_mounted_config_file_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="STATESET_CONFIG"):
        load({"STATESET_CONFIG": str(tmp_path / "nope.toml")}, tmp_path)


def test_replica_lag_pgbouncer_worker_metrics_and_telemetry_keys(tmp_path):
    config = load({}, tmp_path)
    assert config["database"]["max_replica_lag"] == 5 and config["database"]["pgbouncer"] is False
    assert config["celery"]["metrics_port"] == 0 and config["telemetry"]["protocol"] == "grpc"
    env = {"STATESET__DATABASE__MAX_REPLICA_LAG": "30", "STATESET__DATABASE__PGBOUNCER": "true",
           "STATESET__CELERY__METRICS_PORT": "9100",
           "STATESET__TELEMETRY__PROTOCOL": "http/protobuf"}
    config = load(env, tmp_path)
    assert (config["database"]["max_replica_lag"], config["database"]["pgbouncer"]) == (30, True)
    assert (config["celery"]["metrics_port"], config["telemetry"]["protocol"]) == (9100,
                                                                                   "http/protobuf")
    for key, bad in (("DATABASE__MAX_REPLICA_LAG", "-1"), ("DATABASE__PGBOUNCER", "sometimes"),
                     ("CELERY__METRICS_PORT", "70000"), ("TELEMETRY__PROTOCOL", "udp")):
        with pytest.raises(ConfigError, match=key.lower().replace("__", ".")):
            load({f"STATESET__{key}": bad}, tmp_path)
