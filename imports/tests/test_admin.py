"""Back office: import with a dry-run preview, then apply; export actions on the filtered
changelists."""

import csv
import io
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Product
from catalog.tests.factories import ProductFactory
from customers import services as customer_services
from imports.models import Import
from inventory import services as inventory_services
from inventory.models import InventoryItem, StockMovement
from inventory.tests.factories import LocationFactory
from orders import services as order_services
from orders.models import Order

pytestmark = pytest.mark.django_db
ADD = reverse("admin:imports_import_add")
BODY = b"sku,name,price\nADM-1,From admin,1.00\nADM-2,Second,2.00\nbad sku,X,1\n"


def upload(client, body: bytes = BODY, kind: str = "products", name: str = "products.csv", **extra):
    return client.post(ADD,
                       {"kind": kind, "mode": "upsert", "file": SimpleUploadedFile(name, body),
                        **extra})


class _Forms(HTMLParser):
    """For each submit button: the actions of the forms around it, innermost last."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.buttons: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.open.append(found.get("action") or "")
        elif tag == "input" and found.get("type") == "submit":
            self.buttons[found.get("value") or ""] = list(self.open)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.open:
            self.open.pop()


def forms_around(page: str, label: str) -> list[str]:
    parser = _Forms()
    parser.feed(page)
    return next(actions for value, actions in parser.buttons.items() if value.startswith(label))


def test_an_upload_is_a_dry_run_whose_page_previews_it_then_applying_writes_it(
        admin_client, django_capture_on_commit_callbacks):
    assert admin_client.get(ADD).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client)
    dry = Import.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:imports_import_change",
                                                                           args=[dry.pk])
    assert (dry.dry_run, dry.status, dry.created, dry.failed, dry.created_by) == (True, "succeeded",
                                                                                  2, 1,
                                                                                  "admin:admin")
    assert not Product.objects.exists()
    page = admin_client.get(response["Location"]).content.decode()
    assert "Dry run — nothing was written" in page
    assert "would create <strong>2</strong>" in page and "invalid_sku" in page
    assert "Apply this import" in page
    # A form of its own (a form in a form posts to the outer one), and no stray error banner.
    assert forms_around(page, "Apply this import") == [
        reverse("admin:imports_import_apply", args=[dry.pk])]
    assert "Please correct the error" not in page

    with django_capture_on_commit_callbacks(execute=True):
        applied = admin_client.post(reverse("admin:imports_import_apply", args=[dry.pk]))
    real = Import.objects.get(dry_run=False)
    assert applied["Location"] == reverse("admin:imports_import_change", args=[real.pk])
    assert (real.source_id, real.status, real.created, real.failed) == (dry.pk, "succeeded", 2, 1)
    assert set(Product.objects.values_list("sku", flat=True)) == {"ADM-1", "ADM-2"}
    page = admin_client.get(reverse("admin:imports_import_change", args=[dry.pk])).content.decode()
    assert "Apply this import" not in page and "Applied as" in page
    # A second apply is refused and writes nothing.
    admin_client.post(reverse("admin:imports_import_apply", args=[dry.pk]))
    assert Import.objects.filter(dry_run=False).count() == 1


def test_the_changelist_lists_imports(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client)
    response = admin_client.get(reverse("admin:imports_import_changelist"))
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 1


def test_a_refused_file_shows_its_error_and_offers_no_apply(admin_client,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, b"sku,colour\nA,red\n")
    record = Import.objects.get()
    page = admin_client.get(reverse("admin:imports_import_change",
                                    args=[record.pk])).content.decode()
    assert record.status == "failed" and "unknown_column" in page
    assert "Apply this import" not in page
    assert admin_client.post(reverse("admin:imports_import_apply",
                                     args=[record.pk])).status_code == 302
    assert Import.objects.count() == 1 and not Product.objects.exists()


def _perms(*names: str) -> list[Permission]:
    return [Permission.objects.get(content_type__app_label=n.split(".")[0],
                                   codename=n.split(".")[1]) for n in names]


def test_importing_needs_the_import_permission_and_the_kinds_permissions(client,
                                                                         django_capture_on_commit_callbacks):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(*_perms("imports.view_import"))
    client.force_login(user)
    assert client.get(ADD).status_code == 403
    assert upload(client).status_code == 403
    user.user_permissions.add(*_perms("imports.add_import"))
    response = upload(client)
    assert response.status_code == 200
    assert "You may not change these records." in response.content.decode()
    assert not Import.objects.exists()
    user.user_permissions.add(*_perms("catalog.add_product", "catalog.change_product"))
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(client).status_code == 302
    record = Import.objects.get()
    assert (record.dry_run, record.created_by) == (True, "admin:clerk")


def _export(client, changelist: str, action: str, queryset) -> list[list[str]]:
    response = client.post(reverse(changelist),
                           {"action": action, "_selected_action": [
                               str(pk) for pk in queryset.values_list("pk", flat=True)]})
    assert response.status_code == 200 and response["Content-Type"].startswith(
        "text/csv"), response.content[:500]
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_actions_stream_what_is_selected(admin_client):
    ProductFactory(sku="X-1", name="=evil()")
    ProductFactory(sku="X-2")
    rows = _export(admin_client, "admin:catalog_product_changelist", "export_csv",
                   Product.objects.filter(sku="X-1"))
    assert rows == [["sku", "name", "description", "price", "currency", "is_active", "attributes"],
                    ["X-1", "'=evil()", "A product made for tests.", "19.99", "USD", "true", "{}"]]

    customer = customer_services.customer_create(email="c@example.com", first_name="+C")
    rows = _export(admin_client, "admin:customers_customer_changelist", "export_csv",
                   customer.__class__.objects.all())
    assert rows[1][:2] == ["c@example.com", "'+C"]

    location = LocationFactory(code="MAIN")
    product = Product.objects.get(sku="X-2")
    inventory_services.stock_receive(product_id=product.id, location_id=location.id, quantity=10,
                                     reason="x")
    rows = _export(admin_client, "admin:inventory_inventoryitem_changelist", "export_csv",
                   InventoryItem.objects.all())
    assert rows[1] == ["X-2", "MAIN", "10", "0", "10"]
    rows = _export(admin_client, "admin:inventory_stockmovement_changelist", "export_csv",
                   StockMovement.objects.all())
    assert [(r[2], r[4], r[5]) for r in rows[1:]] == [("X-2", "receive", "10")]

    order = order_services.order_create(customer_id=customer.id, items=[
        order_services.OrderLineInput(product_id=product.id, quantity=2)]).order
    rows = _export(admin_client, "admin:orders_order_changelist", "export_csv", Order.objects.all())
    assert [r[0] for r in rows[1:]] == [order.order_number]
    rows = _export(admin_client, "admin:orders_order_changelist", "export_csv_with_items",
                   Order.objects.all())
    columns = rows[0]
    assert [(r[0], r[columns.index("item_sku")], r[columns.index("item_quantity")])
            for r in rows[1:]] == [(order.order_number, "X-2", "2")]


def test_an_export_action_exports_the_whole_filtered_changelist(admin_client):
    for n in range(3):
        ProductFactory(sku=f"ON-{n}", is_active=True)
    ProductFactory(sku="OFF-1", is_active=False)
    response = admin_client.post(
        reverse("admin:catalog_product_changelist") + "?is_active__exact=1",
                                 {"action": "export_csv", "select_across": "1", "index": "0",
                                  "_selected_action": [str(Product.objects.first().pk)]})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r[0] for r in rows[1:]] == ["ON-0", "ON-1", "ON-2"]


def test_the_export_action_needs_the_view_permission(client):
    ProductFactory(sku="X-1")
    user = User.objects.create_user("reader", password="pw", is_staff=True)
    user.user_permissions.add(*_perms("orders.view_order"))
    client.force_login(user)
    selected = {"action": "export_csv", "_selected_action": [str(Product.objects.get().pk)]}
    assert client.post(reverse("admin:catalog_product_changelist"), selected).status_code == 403
    user.user_permissions.add(*_perms("catalog.view_product"))  # a read-only user may export
    response = client.post(reverse("admin:catalog_product_changelist"), selected)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("rows", [1, 50])
def test_the_import_changelist_and_page_cost_a_fixed_number_of_queries(admin_client,
                                                                       django_assert_max_num_queries,
                                                                       rows):
    Import.objects.bulk_create(
        [Import(kind="products", status="succeeded", rows_total=3, rows_done=3,
                                       errors=[{"row": 1, "column": "sku", "code": "invalid_sku",
                                                "message": "x"}])
                                for _ in range(rows)])
    changelist = reverse("admin:imports_import_changelist")
    admin_client.get(changelist)
    with django_assert_max_num_queries(6):
        response = admin_client.get(changelist)
    assert len(response.context["cl"].result_list) == rows
    page = reverse("admin:imports_import_change", args=[Import.objects.first().pk])
    admin_client.get(page)
    with django_assert_max_num_queries(8):
        assert admin_client.get(page).status_code == 200


def test_an_upload_over_the_apis_body_limit_is_taken(admin_client,
                                                     django_capture_on_commit_callbacks):
    body = b"sku,name,price\n" + b"".join(f"BIG-{n:06d},{'Long name ' * 20},1.00\n".encode()
                                          for n in range(8000))
    assert len(body) > 1024 * 1024
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(admin_client, body)
    assert response.status_code == 302
    assert Import.objects.get().created == 8000
