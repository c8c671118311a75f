import pytest

from stateset.testing import data_of


@pytest.fixture
def post_import(api, django_capture_on_commit_callbacks):
    """post_import(body, kind=..., **query) → the response; the task runs in-process (no broker)."""

    def post(body: bytes | str, *, kind: str = "products", client=None,
             content_type: str = "text/csv", **query: str):
        if isinstance(body, str):
            body = body.encode()
        params = "&".join(f"{k}={v}" for k, v in {"kind": kind, **query}.items())
        with django_capture_on_commit_callbacks(execute=True):
            return (client or api).post(f"/api/v1/imports?{params}", data=body,
                                        content_type=content_type)

    return post


@pytest.fixture
def run_import(post_import, api):
    """run_import(body, **query) → the finished import as GET /imports/{id} shows it."""

    def run(body: bytes | str, **query: str) -> dict:
        accepted = data_of(post_import(body, **query), 202)
        assert accepted["status"] == "queued"
        return data_of(api.get(f"/api/v1/imports/{accepted['id']}"))

    return run
