"""POST/GET /imports: refused files, the body limit, media types, scopes, the finished event."""

import pytest
from django.test import override_settings

from catalog.models import Product
from imports.models import Import, ImportChunk, ImportKey
from stateset.testing import client_for, data_of, error_of
from webhooks.models import Event

pytestmark = pytest.mark.django_db

GOOD = "sku,name,price\nF-1,Fine,1.00\n"


@pytest.mark.parametrize(("body", "code", "column"), [
    ("name,price\nWidget,1.00\n", "missing_column", "sku"),
    ("sku,name,price,colour\nF-1,Fine,1.00,red\n", "unknown_column", "colour"),
    ("sku,name,price,name\nF-1,Fine,1.00,x\n", "duplicate_column", "name"),
    ("sku,name,price\nF-1,Fine,1.00\nF-2,Caf\xe9,2.00\n".encode("latin-1"), "not_utf8", None),
    ('sku,name,price\nF-1,"Fine"x,1.00\n', "malformed_csv", None),
    ("\n\n", "missing_header", None),
])
def test_a_bad_file_is_refused_whole_with_one_error_naming_the_problem(run_import, body, code,
                                                                       column):
    result = run_import(body)
    assert result["status"] == "failed"
    assert [(e["code"], e["column"]) for e in result["errors"]] == [(code, column)]
    assert result["errors"][0]["message"]
    assert (result["created"], result["rows_done"]) == (0, 0)
    assert not Product.objects.exists()


def test_a_non_utf8_byte_late_in_the_file_refuses_it_before_any_row_is_written(run_import):
    rows = "".join(f"L-{n},Line {n},1.00\n" for n in range(2500))
    body = ("sku,name,price\n" + rows).encode() + b"L-X,Bad \xff byte,1.00\n"
    with override_settings(IMPORTS_BATCH_SIZE=1000):
        result = run_import(body)
    assert result["status"] == "failed" and result["errors"][0]["code"] == "not_utf8"
    assert result["errors"][0]["row"] == 2501
    assert not Product.objects.exists()


def test_an_ndjson_line_with_an_unknown_field_refuses_the_file(run_import):
    body = (
        '{"sku": "N-1", "name": "A", "price": "1"}\n'
        '{"sku": "N-2", "name": "B", "price": "1", "colour": "red"}\n')
    result = run_import(body, content_type="application/x-ndjson")
    assert result["status"] == "failed"
    assert [(e["row"], e["column"], e["code"])
            for e in result["errors"]] == [(2, "colour", "unknown_column")]
    assert not Product.objects.exists()


def test_a_body_over_the_import_limit_is_413_and_nothing_is_stored(post_import):
    body = b"sku,name,price\n" + b"x" * (60 * 1024 * 1024)
    error = error_of(post_import(body), 413)
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit_bytes"] == 50 * 1024 * 1024
    assert not Import.objects.exists() and not ImportChunk.objects.exists()


def test_the_api_body_limit_does_not_apply_to_imports(run_import):
    rows = "".join(f"BIG-{n:06d},{'Long name ' * 20},1.00\n" for n in range(8000))  # about 1.7 MB
    body = "sku,name,price\n" + rows
    assert len(body) > 1024 * 1024
    result = run_import(body)
    assert (result["status"], result["created"]) == ("succeeded", 8000)


def test_a_chunked_upload_is_told_to_send_a_length(api):
    response = api.post("/api/v1/imports?kind=products", data=GOOD, content_type="text/csv",
                        HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert error_of(response, 411)["code"] == "length_required"
    assert not Import.objects.exists()


@pytest.mark.parametrize(("content_type", "status", "code"), [
    ("application/json", 415, "unsupported_media_type"),
    ("text/csv; charset=latin-1", 415, "unsupported_media_type"),
])
def test_other_media_types_are_refused(post_import, content_type, status, code):
    assert error_of(post_import(GOOD, content_type=content_type), status)["code"] == code
    assert not Import.objects.exists()


@pytest.mark.parametrize(("query", "code"), [
    ({"kind": "orders"}, "invalid_parameter"),
    ({"mode": "merge"}, "invalid_parameter"),
    ({"bogus": "1"}, "invalid_parameter"),
])
def test_bad_parameters_are_422(post_import, query, code):
    kind = query.pop("kind", "products")
    assert error_of(post_import(GOOD, kind=kind, **query), 422)["code"] == code
    assert not Import.objects.exists()


def test_an_empty_body_is_422(post_import):
    assert error_of(post_import(b""), 422)["code"] == "empty_file"
    assert not Import.objects.exists()


@pytest.mark.parametrize(("scopes", "status"), [
    (("imports:write",), 403),
    (("catalog:write",), 403),
    (("imports:read", "catalog:write"), 403),
    (("imports:write", "customers:write"), 403),
    (("imports:write", "catalog:write"), 202),
    (("imports:*", "catalog:*"), 202),
])
def test_posting_needs_imports_write_and_the_kinds_write_scope(post_import, make_key, scopes,
                                                               status):
    response = post_import(GOOD, client=client_for(make_key(*scopes)))
    assert response.status_code == status, response.content
    assert Import.objects.count() == (1 if status == 202 else 0)
    assert Product.objects.count() == (1 if status == 202 else 0)


def test_kinds_need_their_own_write_scope(post_import, make_key):
    client = client_for(make_key("imports:write", "catalog:write"))
    body = "sku,location_code,on_hand\nX,MAIN,1\n"
    assert error_of(post_import(body, kind="inventory", client=client),
                    403)["code"] == "insufficient_scope"
    assert not Import.objects.exists()


def test_reading_imports_needs_imports_read_or_write(run_import, make_key, anon_client):
    record = run_import(GOOD)
    for scopes, status in ((("imports:read",), 200), (("imports:write",), 200),
                           (("catalog:read",), 403)):
        client = client_for(make_key(*scopes))
        assert client.get(f"/api/v1/imports/{record['id']}").status_code == status
        assert client.get("/api/v1/imports").status_code == status
    assert anon_client.get("/api/v1/imports").status_code == 401


def test_list_and_detail(run_import, api):
    first = run_import(GOOD)
    second = run_import("sku,name,price\nF-2,Other,2.00\n", dry_run="true")
    page = data_of(api.get("/api/v1/imports?limit=10"))
    assert [item["id"] for item in page["items"]] == [second["id"], first["id"]]
    assert "errors" not in page["items"][0]
    dry = data_of(api.get("/api/v1/imports?dry_run=true"))
    assert [item["id"] for item in dry["items"]] == [second["id"]]
    assert error_of(api.get("/api/v1/imports?bogus=1"), 422)["code"] == "invalid_parameter"
    assert error_of(api.get("/api/v1/imports/not-an-id"), 404)["code"] == "import_not_found"
    detail = data_of(api.get(f"/api/v1/imports/{first['id']}"))
    assert detail["created_by"] == "api-key:test"
    assert detail["started_at"] and detail["finished_at"] and detail["duration_ms"] is not None


def test_an_import_ends_with_the_finished_event_and_keeps_no_file_or_keys(run_import):
    result = run_import("sku,name,price\nE-1,Fine,1.00\nbad sku,X,1\n")
    assert [(t, p["import_id"], p["status"], p["created"], p["failed"])
            for t, p in Event.objects.filter(type="import.finished")
            .values_list("type", "payload")] == \
        [("import.finished", result["id"], "succeeded", 1, 1)]
    assert [p["sku"] for p in Event.objects.filter(type="product.created")
            .values_list("payload", flat=True)] == ["E-1"]  # the row written, in its batch
    assert not ImportChunk.objects.exists() and not ImportKey.objects.exists()


def test_an_idempotent_repeat_starts_nothing(api, django_capture_on_commit_callbacks):
    def post():
        with django_capture_on_commit_callbacks(execute=True):
            return api.post("/api/v1/imports?kind=products", data=GOOD, content_type="text/csv",
                            HTTP_IDEMPOTENCY_KEY="import-1")

    first, again = post(), post()
    assert data_of(first, 202)["id"] == data_of(again, 202)["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Import.objects.count() == 1
