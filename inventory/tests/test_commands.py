"""Operators' commands and the periodic tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from inventory import services, tasks
from inventory.models import InventoryItem, Reservation, StockMovement
from inventory.services import ReserveLine
from inventory.tests.factories import item, stock
from stateset.celery import app

pytestmark = pytest.mark.django_db


def _expired_reservation(product, quantity=2):
    reservation = services.stock_reserve(
        lines=[ReserveLine(product_id=product.id, quantity=quantity)],
                                         reference_type="cart", reference_id="c",
                                         expires_at=timezone.now() + timedelta(minutes=1))[0]
    Reservation.objects.filter(id=reservation.id).update(
        expires_at=timezone.now() - timedelta(seconds=1))
    return reservation


def test_expire_reservations_command(product, main, capsys):
    stock(product, main, 5)
    _expired_reservation(product)
    call_command("expire_reservations")
    assert capsys.readouterr().out.strip() == "expired 1 reservation(s)"
    assert item(product, main).available == 5
    assert Reservation.objects.get().status == "expired"


def test_the_beat_tasks_exist_under_the_scheduled_names(product, main):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"inventory.tasks.reservations_expire",
            "inventory.tasks.inventory_reconcile_report"} <= scheduled
    assert {"inventory.tasks.reservations_expire",
            "inventory.tasks.inventory_reconcile_report"} <= set(app.tasks)
    stock(product, main, 5)
    _expired_reservation(product, quantity=3)
    assert tasks.reservations_expire.delay().get() == 1  # eager in tests, a worker in production
    assert item(product, main).reserved == 0


def test_reconcile_report_task_reports_without_fixing(product, main):
    stock(product, main, 5)
    InventoryItem.objects.update(reserved=2)  # drift: no active reservation holds these
    report = tasks.inventory_reconcile_report()
    assert report["drifted"] == 1 and report["rows"][0]["expected_reserved"] == 0
    assert item(product, main).reserved == 2
    assert not StockMovement.objects.filter(reason="reconcile").exists()


def test_reconcile_command_reports_then_fixes(product, main, capsys):
    stock(product, main, 5)
    services.stock_reserve(lines=[ReserveLine(product_id=product.id, quantity=1)],
                           reference_type="o", reference_id="1")
    call_command("reconcile_inventory", "--ledger")
    out = capsys.readouterr().out
    assert "no drift" in out and "0 ledger mismatch(es)" in out
    InventoryItem.objects.update(reserved=4)
    call_command("reconcile_inventory", "--ledger")
    out = capsys.readouterr().out
    assert "drift: " in out and "reserved 4, active reservations hold 1" in out
    assert "1 ledger mismatch(es)" in out
    assert item(product, main).reserved == 4
    call_command("reconcile_inventory", "--fix", "--ledger")
    out = capsys.readouterr().out
    assert "fixed: " in out and "1 row(s) drifted, 1 fixed" in out
    assert item(product, main).reserved == 1
    # The ledger still disagrees: the reconcile movement records the repair of a change it never
    # saw.
    assert "1 ledger mismatch(es)" in out
