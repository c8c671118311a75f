"""The run itself: the command, resuming after a crash, one worker at a time, flat memory, a real
broker."""

import io
import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from catalog.models import Product
from imports import services
from imports.models import Import, ImportChunk, ImportKey
from stateset.tests.system.test_celery_broker import (  # noqa: F401
    needs_broker,
    send,
    wait_for,
    worker,
    worker_env,
)

pytestmark = pytest.mark.django_db


def test_import_data_runs_the_service_with_a_progress_bar(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(
        "sku,name,price\n" + "".join(f"CMD-{n},Name {n},1.00\n"
                                     for n in range(5)) + "bad sku,X,1\n")
    out, err = io.StringIO(), io.StringIO()
    with override_settings(IMPORTS_BATCH_SIZE=2):
        call_command("import_data", str(path), "--kind", "products", stdout=out, stderr=err)
    assert "5 created, 0 updated, 0 unchanged, 1 failed" in out.getvalue()
    assert "row 6 [sku]: invalid_sku" in out.getvalue()
    assert "6/6 rows" in err.getvalue() and "[" + "#" * 30 + "]" in err.getvalue()
    assert Product.objects.count() == 5
    assert Import.objects.get().created_by == "command:import_data"

    call_command("import_data", str(path), "--kind", "products", "--dry-run", "--no-progress",
                 stdout=out)
    assert "dry run (nothing written)" in out.getvalue()
    assert "0 created, 0 updated, 5 unchanged" in out.getvalue()


def test_import_data_exits_non_zero_on_a_refused_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("sku,colour\nA,red\n")
    with pytest.raises(CommandError, match="Unknown column 'colour'"):
        call_command("import_data", str(path), "--kind", "products", "--no-progress",
                     stdout=io.StringIO())
    assert not Product.objects.exists()


def _stored(body: str) -> Import:
    return services.import_create(kind="products", stream=io.BytesIO(body.encode()), enqueue=False)


def test_a_run_that_died_is_resumed_after_its_last_committed_batch():
    body = "sku,name,price\n" + "".join(f"R-{n},Name {n},1.00\n" for n in range(6))
    record = _stored(body)
    with override_settings(IMPORTS_BATCH_SIZE=2):
        # A first worker committed two batches (rows 1-4), then died holding the lease.
        token = uuid.uuid4()
        assert services._claim(record.id, token)
        kind = services.KINDS["products"]
        record.refresh_from_db()
        record.rows_total = 6
        services._save(record, token, rows_total=6)
        batches = list(services.formats.records(record.id, "csv", kind))
        services._apply_batch(record, kind, token, batches[0:2])
        services._apply_batch(record, kind, token, batches[2:4])
        # While its lease holds, nobody else runs it.
        assert services.import_run(import_id=record.id) is None
        Import.objects.filter(pk=record.pk).update(
            heartbeat_at=timezone.now() - timedelta(minutes=10))
        finished = services.import_run(import_id=record.id)
    assert (finished.status, finished.rows_done, finished.created, finished.failed) == ("succeeded",
                                                                                        6, 6, 0)
    assert Product.objects.count() == 6
    assert not ImportKey.objects.exists() and not ImportChunk.objects.exists()
    # The stalled worker wakes up: its lease is gone, so its next batch writes nothing.
    with pytest.raises(services.LeaseLost), transaction.atomic():
        services._record_batch(record, token, 7, {})


def test_a_finished_import_is_not_run_again():
    record = _stored("sku,name,price\nZ-1,Z,1.00\n")
    assert services.import_run(import_id=record.id).status == "succeeded"
    assert services.import_run(import_id=record.id) is None
    assert Product.objects.count() == 1


@pytest.mark.slow
# about 40 s on an idle 2-core machine; several minutes when it is shared
@pytest.mark.timeout(1200)
@pytest.mark.django_db(transaction=True)
def test_an_import_of_200000_rows_keeps_the_workers_memory_flat():
    """RSS is sampled after every batch: once the first batches have warmed the caches, it must
    not grow with the rows read (holding 200,000 rows, or their keys, would add well over 50 MB)."""
    rows = 200_000
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        handle.write("sku,name,description,price,attributes\n")
        for n in range(rows):
            handle.write(
                f'MEM-{n:07d},Product {n},A description of product {n},{n % 500}.99,"{{""n"": '
                f'{n}}}"\n')
    process = psutil.Process(os.getpid())
    samples: list[tuple[int, int]] = []
    try:
        with Path(handle.name).open("rb") as stream:
            record = services.import_create(kind="products", stream=stream, enqueue=False)
        finished = services.import_run(import_id=record.id,
                                       progress=lambda r: samples.append((r.rows_done,
                                                                          process.memory_info().rss)))
    finally:
        os.unlink(handle.name)
    assert (finished.status, finished.created, finished.failed) == ("succeeded", rows, 0)
    warm = next(rss for done, rss in samples if done >= 20_000)
    peak = max(rss for _, rss in samples)
    growth_mb = (peak - warm) / 2**20
    print(
        f"RSS after 20k rows {warm / 2**20:.0f} MB, peak {peak / 2**20:.0f} MB over {rows:,} rows")
    assert growth_mb < 25, f"RSS grew {growth_mb:.1f} MB between row 20,000 and row {rows:,}"


@needs_broker
@pytest.mark.django_db(transaction=True)
def test_the_import_task_runs_in_a_worker_through_the_redis_broker(worker):  # noqa: F811
    record = _stored("sku,name,price\nBRK-1,Broker,1.00\nBRK-2,Broker two,2.00\n")
    send("imports.tasks.import_run", str(record.id))

    def finished() -> bool:
        record.refresh_from_db()
        return record.status == "succeeded"

    wait_for(finished, worker)
    assert (record.created, record.rows_done) == (2, 2)
    assert set(Product.objects.values_list("sku", flat=True)) == {"BRK-1", "BRK-2"}


def test_a_dry_runs_file_is_purged_a_day_after_it_ended_and_can_no_longer_be_applied():
    from stateset.errors import Conflict

    old = services.import_run(import_id=services.import_create(
        kind="products", stream=io.BytesIO(b"sku,name,price\nP-1,P,1.00\n"), dry_run=True,
        enqueue=False).id)
    fresh = services.import_run(import_id=services.import_create(
        kind="products", stream=io.BytesIO(b"sku,name,price\nP-2,P,1.00\n"), dry_run=True,
        enqueue=False).id)
    Import.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=2))
    assert services.imports_purge() == 1
    assert not ImportChunk.objects.filter(import_record=old).exists()
    assert ImportChunk.objects.filter(import_record=fresh).exists()
    with pytest.raises(Conflict, match="no longer kept"):
        services.import_apply(import_id=old.pk)
    assert not Import.objects.filter(source=old).exists() and not Product.objects.exists()
