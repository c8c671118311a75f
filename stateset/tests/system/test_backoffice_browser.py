"""SPEC §5, checked as a person would: Debian's headless Chromium, driven over chromedriver's W3C
WebDriver HTTP API (a small client below; no Selenium dependency), logs into the back office on a
live server and does the day's work from the pages alone — links and buttons found by their
visible text, forms filled as a person fills them.

- A Warehouse user opens an order's page and an inventory row's page and adjusts the count.
- A Warehouse user ships an order (creates its shipment, then ships it); a Support user creates
  and approves a return; a Warehouse user receives it — with the buttons of the order, shipment and
  return pages.

With ``STATESET_SCREENSHOTS=1`` the first test saves the dashboard and an order page to
``docs/screenshots/`` (dashboard.png, order.png; the README shows them). Skipped with a reason
when Chromium or chromedriver is absent (``.ci/run`` installs both)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from catalog.models import Product
from customers.models import Customer
from fulfillment import services as fulfillment_services
from imports.models import Import
from inventory import services as inventory_services
from inventory.models import InventoryItem, StockMovement
from orders import services as orders_services
from orders.models import Order
from returns.models import Return
from stateset import roles
from stateset.testing import staff_groups

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="Debian's chromium and chromium-driver are not installed "
                              "(.ci/run installs them)"),
    pytest.mark.django_db(transaction=True),
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
PASSWORD = "correct horse battery"


class MissingControl(AssertionError):
    """A link, button or field the SPEC'd page should show is not there."""


class WebDriverError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lower(expression: str) -> str:
    return f"translate({expression}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"


class Browser:
    """Just enough of W3C WebDriver: open pages, find by CSS or XPath, type, click, read, shoot."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.port = _free_port()
        self.profile = tempfile.TemporaryDirectory()
        assert CHROMEDRIVER is not None  # the module is skipped without it
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline:
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        options = {"binary": CHROMIUM,
                   "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--window-size=1280,1600",
                            "--no-first-run", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={self.profile.name}"]}
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options,
            "timeouts": {"implicit": 0, "pageLoad": 60_000, "script": 30_000}}}})
        self.session = f"/session/{answer['sessionId']}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.endpoint}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return json.loads(answer.read() or b"{}").get("value")
        except urllib.error.HTTPError as exc:
            raise WebDriverError(exc.read().decode()[:2000]) from None

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)
            self.profile.cleanup()

    # --- pages ---------------------------------------------------------------------------------

    def open(self, path: str) -> None:
        self._call("POST", f"{self.session}/url", {"url": f"{self.base_url}{path}"})

    @property
    def path(self) -> str:
        url: str = self._call("GET", f"{self.session}/url")
        return url.removeprefix(self.base_url)

    @property
    def text(self) -> str:
        """What the page shows (the body's rendered text)."""
        return self.read(self.find("css selector", "body"))

    def screenshot(self, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(self._call("GET", f"{self.session}/screenshot")))

    # --- elements ------------------------------------------------------------------------------

    def find_all(self, using: str, value: str, within: str | None = None) -> list[str]:
        scope = f"{self.session}/element/{within}" if within else self.session
        found = self._call("POST", f"{scope}/elements", {"using": using, "value": value})
        # An element reference is a one-key object ({"element-6066-…": id}).
        return [next(iter(element.values())) for element in found]

    def find(self, using: str, value: str, within: str | None = None) -> str:
        found = self.find_all(using, value, within)
        if not found:
            raise MissingControl(f"nothing matches {value!r} on {self.path}")
        return found[0]

    def read(self, element: str) -> str:
        text: str = self._call("GET", f"{self.session}/element/{element}/text")
        return text

    def click(self, element: str) -> None:
        self._call("POST", f"{self.session}/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._call("POST", f"{self.session}/element/{element}/clear", {})
        self._call("POST", f"{self.session}/element/{element}/value", {"text": text})

    # --- as a person does it -------------------------------------------------------------------

    def control(self, *labels: str, within: str | None = None) -> str:
        """The first visible link or button whose text (or value) is one of ``labels`` (any case),
        else the first that contains one, in the order given: "Ship" is the button, not the
        "Shipments" breadcrumb."""
        for exact in (True, False):
            for label in labels:
                wanted = label.lower()
                text, value = _lower("normalize-space(.)"), _lower("@value")
                by_text, by_value = ((f"{text} = '{wanted}'", f"{value} = '{wanted}'") if exact
                                     else (f"contains({text}, '{wanted}')",
                                           f"contains({value}, '{wanted}')"))
                xpath = (f".//a[{by_text}] | .//button[{by_text}]"
                         f" | .//input[(@type='submit' or @type='button') and {by_value}]")
                for element in self.find_all("xpath", xpath, within):
                    if self._call("GET", f"{self.session}/element/{element}/displayed"):
                        return element
        raise MissingControl(f"no link or button saying {' / '.join(labels)!r} on {self.path}")

    def follow(self, href: str) -> None:
        """Click the page's link to ``href`` (an app list's model, a breadcrumb)."""
        self.navigate(self.find("css selector", f"a[href='{href}']"), href)
        assert self.path.split("?")[0] == href, self.path

    def press(self, *labels: str, within: str | None = None) -> None:
        """Click the link or button and wait for the page it leads to: a click may return while
        its navigation (a form's POST and redirect) is still under way on a loaded machine."""
        self.navigate(self.control(*labels, within=within), labels[0])

    def navigate(self, element: str, what: str) -> None:
        page = self.find("css selector", "html")
        self.click(element)
        deadline = time.monotonic() + 15
        while not self._gone(page) or not self.find_all("css selector", "body"):
            assert time.monotonic() < deadline, f"pressing {what!r} led nowhere"
            time.sleep(0.05)

    def _gone(self, element: str) -> bool:
        try:
            self._call("GET", f"{self.session}/element/{element}/name")
        except WebDriverError:  # a stale element: its page has been replaced
            return True
        return False

    def form_of(self, *labels: str) -> str:
        """The form holding the button that says one of ``labels``."""
        button = self.control(*labels)
        return self.find("xpath", "./ancestor::form[1]", within=button)

    def fill(self, form: str, name: str, value: str) -> None:
        field = self.find("css selector", f"[name$='{name}']", within=form)
        if self._call("GET", f"{self.session}/element/{field}/name") == "select":
            self.choose(field, value)
        else:
            self.type(field, value)

    def choose(self, select: str, visible: str) -> None:
        options = self.find_all("css selector", "option", within=select)
        for option in options:
            if visible.lower() in self.read(option).lower():
                self.click(option)
                return
        raise MissingControl(f"no option {visible!r}")

    def log_in(self, username: str) -> None:
        self.open("/admin/login/?next=/admin/")
        self.wait_for_path("/admin/login/?next=/admin/")
        self.type(self.find("css selector", "#id_username"), username)
        self.type(self.find("css selector", "#id_password"), PASSWORD)
        self.press("Log in")
        self.wait_for_path("/admin/")

    def wait_for_path(self, path: str, seconds: float = 15) -> None:
        """A click's navigation may still be under way when the click returns (a loaded machine):
        wait until the page is ``path`` and drawn."""
        deadline = time.monotonic() + seconds
        while self.path != path or not self.find_all("css selector", "body"):
            assert time.monotonic() < deadline, f"still on {self.path}, not {path}"
            time.sleep(0.1)

    def log_out(self) -> None:
        self.press("Log out")
        self.wait_for_path("/admin/logout/")


@pytest.fixture
def browser(live_server, settings):
    settings.WHITENOISE_USE_FINDERS = True  # the admin's stylesheets, as in production
    driver = Browser(live_server.url)
    yield driver
    driver.close()


# --- the world ----------------------------------------------------------------------------------


def member(group: str, username: str) -> User:
    staff_groups()
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def shop(db):
    customer = Customer.objects.create(email="rosa@example.com", first_name="Rosa",
                                       last_name="Diaz")
    north = inventory_services.location_create(code="DC-NORTH", name="North", priority=0)
    product = Product.objects.create(sku="SKU-1", name="Desk lamp", price=Decimal("24.00"))
    inventory_services.stock_receive(product_id=product.id, location_id=north.id, quantity=20,
                                     reason="opening stock")
    order = orders_services.order_create(customer_id=customer.id, items=[
        orders_services.OrderLineInput(product_id=product.id, quantity=2)]).order
    return {"customer": customer, "north": north, "product": product, "order": order}


def _delivered(shop: dict[str, Any]) -> Order:
    order = shop["order"]
    orders_services.payment_record(order_id=order.id, act="capture")
    shipment = fulfillment_services.shipment_create(order_id=order.id, carrier="UPS").shipment
    fulfillment_services.shipment_ship(shipment_id=shipment.id)
    fulfillment_services.shipment_deliver(shipment_id=shipment.id)
    return Order.objects.get(pk=order.pk)


# --- the journeys -------------------------------------------------------------------------------


def test_a_warehouse_user_opens_an_order_and_adjusts_a_rows_count(browser, shop):
    member(roles.WAREHOUSE, "wendy")
    order = shop["order"]
    if os.environ.get("STATESET_SCREENSHOTS") == "1":
        from orders import rollups

        rollups.order_days_refresh(days=2)  # what the beat task does every minute
    browser.log_in("wendy")
    if os.environ.get("STATESET_SCREENSHOTS") == "1":
        browser.screenshot(SCREENSHOTS / "dashboard.png")

    # The order, from the app list, then its number in the list.
    browser.follow("/admin/orders/order/")
    browser.press(order.order_number)
    assert browser.path == f"/admin/orders/order/{order.pk}/change/"
    page = browser.text
    assert order.order_number in page and "rosa@example.com" in page and "SKU-1" in page
    if os.environ.get("STATESET_SCREENSHOTS") == "1":
        browser.screenshot(SCREENSHOTS / "order.png")

    # The stock row, from the list, then its page's adjust form.
    browser.open("/admin/")
    browser.follow("/admin/inventory/inventoryitem/")
    browser.press("SKU-1")
    row = InventoryItem.objects.get(product=shop["product"], location=shop["north"])
    assert browser.path == f"/admin/inventory/inventoryitem/{row.pk}/change/"
    form = browser.form_of("Adjust stock")
    browser.fill(form, "delta", "-3")
    browser.fill(form, "reason", "damaged")
    browser.press("Adjust stock", within=form)
    assert "SKU-1 @ DC-NORTH: adjusted \u22123 (damaged), on hand 17" in browser.text
    row.refresh_from_db()
    assert row.on_hand == 17
    assert StockMovement.objects.get(kind="adjust").actor == "admin:wendy"

    # A refusal shows an error and writes nothing.
    form = browser.form_of("Adjust stock")
    browser.fill(form, "delta", "-40")
    browser.fill(form, "reason", "lost")
    browser.press("Adjust stock", within=form)
    assert "insufficient_stock" in browser.text
    row.refresh_from_db()
    assert row.on_hand == 17


def test_a_warehouse_user_ships_an_order_from_the_pages(browser, shop):
    member(roles.WAREHOUSE, "wendy")
    order = shop["order"]
    browser.log_in("wendy")
    browser.follow("/admin/orders/order/")
    browser.press(order.order_number)

    # Create the shipment: the form offers the lines, quantities and location; the carrier is ours.
    browser.press("Create a shipment")
    form = browser.form_of("Create a shipment")
    browser.fill(form, "carrier", "UPS")
    browser.press("Create a shipment", within=form)
    assert "shipment" in browser.text.lower() and "created" in browser.text.lower()
    shipment = order.shipments.get()
    assert shipment.status == "pending"

    # Ship it, from the shipment's own page (a link on the order page, or where we landed).
    if f"/admin/fulfillment/shipment/{shipment.pk}/" not in browser.path:
        browser.follow(f"/admin/fulfillment/shipment/{shipment.pk}/change/")  # the order's list
    browser.press("Ship")
    shipment.refresh_from_db()
    assert shipment.status == "shipped"
    assert "shipped" in browser.text.lower()


def test_support_creates_and_approves_a_return_and_the_warehouse_receives_it(browser, shop):
    member(roles.SUPPORT, "sam")
    member(roles.WAREHOUSE, "wendy")
    order = _delivered(shop)
    browser.log_in("sam")
    browser.follow("/admin/orders/order/")
    browser.press(order.order_number)

    browser.press("Create a return")
    form = browser.form_of("Create a return")
    line = order.items.get()
    browser.fill(form, f"resellable_{line.id}", "1")  # the line's units coming back resellable
    browser.press("Create a return", within=form)
    rma = Return.objects.get(order=order)
    assert rma.status == "requested" and rma.rma_number in browser.text
    if f"/admin/returns/return/{rma.pk}/" not in browser.path:
        browser.press(rma.rma_number)
    browser.press("Approve")
    rma.refresh_from_db()
    assert rma.status == "approved"
    browser.log_out()

    browser.log_in("wendy")
    browser.open(f"/admin/returns/return/{rma.pk}/change/")
    with pytest.raises(MissingControl):
        browser.control("Approve", "Refund")  # not the warehouse's moves
    browser.press("Receive")
    if "condition" in browser.text.lower() and rma.status != "received":
        form = browser.form_of("Receive")  # per-line condition and location
        browser.press("Receive", within=form)
    rma.refresh_from_db()
    assert rma.status == "received"
    on_hand = InventoryItem.objects.get(product=shop["product"], location=shop["north"]).on_hand
    assert on_hand == 19  # 20 − 2 shipped + 1 restocked


def test_staff_import_a_file_check_its_dry_run_and_apply_it(browser, shop, tmp_path):
    User.objects.create_superuser("ada", password=PASSWORD)
    sheet = tmp_path / "products.csv"
    sheet.write_text("sku,name,price\nIMP-1,Imported lamp,12.50\nbad sku,X,1\n")
    browser.log_in("ada")
    browser.open("/admin/imports/import/add/")
    form = browser.form_of("Check the file (dry run)")
    browser.fill(form, "kind", "Products")
    browser.type(browser.find("css selector", "input[type=file]", within=form), str(sheet))
    browser.press("Check the file (dry run)", within=form)
    dry = Import.objects.get()
    browser.wait_for_path(f"/admin/imports/import/{dry.pk}/change/")
    assert "Dry run — nothing was written" in browser.text
    assert "Please correct the error" not in browser.text
    assert not Product.objects.filter(sku="IMP-1").exists()

    browser.press("Apply this import")  # posts to the apply view, not the read-only change page
    applied = Import.objects.get(dry_run=False)
    browser.wait_for_path(f"/admin/imports/import/{applied.pk}/change/")
    assert "Import started" in browser.text
    assert Product.objects.get(sku="IMP-1").name == "Imported lamp"
