"""A separate process for the cross-process tests of API keys (test_api_keys_processes.py).

Reads one JSON command per line on stdin — ``{"method": "get", "path": ..., "key": ..., "body"?}`` —
makes that request through the whole Django stack (middleware, authentication, the view) and answers
one JSON line: the status, the answer's data and how many times the request read the API-key table
(0 means authentication was served by this process's cache). Run with the test database's URL."""

import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402


def run(command: dict) -> dict:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=command["key"])
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, command["method"])(command["path"], command.get("body"),
                                                      format="json")
    key_reads = sum(1 for query in queries
                    if query["sql"].lstrip().upper().startswith("SELECT")
                    and "stateset_apikey" in query["sql"])
    body = (response.json() if response.get("Content-Type", "").startswith("application/json")
            else None)
    return {"status": response.status_code, "key_reads": key_reads,
            "data": body.get("data") if isinstance(body, dict) else None}


def main() -> None:
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
