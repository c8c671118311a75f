"""Helpers of the imports tests."""

import io

from imports import services


def run_service(body: bytes | str, *, kind: str = "products", **kwargs) -> object:
    """The import service without HTTP (what the task and import_data run)."""
    if isinstance(body, str):
        body = body.encode()
    record = services.import_create(kind=kind, stream=io.BytesIO(body), enqueue=False, **kwargs)
    return services.import_run(import_id=record.id)


def triples(record: dict) -> list[tuple]:
    """The errors of an import as (row, column, code)."""
    return [(e["row"], e["column"], e["code"]) for e in record["errors"]]
