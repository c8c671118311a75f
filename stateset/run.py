"""``make run``: database (embedded when DATABASE_URL is unset), migrations, local set-up, gunicorn.

Ctrl-C stops gunicorn and then the embedded PostgreSQL this process started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from stateset import localdb


def main() -> int:
    env = dict(os.environ)
    started_db = False
    if not env.get("DATABASE_URL"):
        started_db = not localdb.is_running()
        env["DATABASE_URL"] = localdb.start()
        print(f"embedded PostgreSQL: {env['DATABASE_URL']}", flush=True)
    python = sys.executable
    manage = [python, "manage.py"]
    server = None
    try:
        subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "collectstatic", "--no-input", "-v", "0"], env=env, check=True)
        subprocess.run([*manage, "bootstrap"], env=env, check=True)
        bind = env.get("STATESET_BIND", "127.0.0.1:8000")
        server = subprocess.Popen(
            [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", bind,
             "stateset.wsgi:application"],
            env=env,
        )
        return server.wait()
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if started_db:
            localdb.stop()
            print("embedded PostgreSQL stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
