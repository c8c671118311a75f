"""``stateset.db.batched_inserts``: held INSERTs go as one statement, before anything that could
see them, and an error in one of them is the caller's error."""

from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from stateset.db import batched_inserts, insert_rows
from stateset.models import ApiKey

pytestmark = pytest.mark.django_db


def keys(*hashes: str) -> list[ApiKey]:
    return [ApiKey(name=value, prefix=value[:8], key_hash=value) for value in hashes]


def session(key: str) -> Session:
    return Session(session_key=key, session_data="", expire_date=timezone.now())


def hashes() -> list[str]:
    return sorted(ApiKey.objects.values_list("key_hash", flat=True))


def test_held_inserts_of_several_tables_are_one_statement():
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), batched_inserts():
        insert_rows(keys("b-1", "b-2"))
        insert_rows([session("batched")])
        insert_rows(keys("b-3"))
    sent = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]  # the test's transaction
    assert len(sent) == 1 and sent[0].startswith("WITH w0 AS (INSERT")
    assert hashes() == ["b-1", "b-2", "b-3"]
    assert Session.objects.filter(session_key="batched").exists()


def test_the_next_statement_sees_the_held_rows():
    with transaction.atomic(), batched_inserts():
        insert_rows(keys("seen-1"))
        with CaptureQueriesContext(connection) as queries:
            assert ApiKey.objects.filter(key_hash="seen-1").exists()
        assert len(queries) == 2  # the held INSERT, then the read
        insert_rows(keys("seen-2"))
    assert ApiKey.objects.filter(key_hash="seen-2").exists()


def test_an_insert_that_reads_back_is_not_held():
    with transaction.atomic(), batched_inserts():
        rows = keys("back-1")
        with CaptureQueriesContext(connection) as queries:
            insert_rows(rows, returning=("created_at",))
        assert len(queries) == 1 and rows[0].created_at is not None


def test_a_failing_held_insert_rolls_the_whole_change_back():
    insert_rows(keys("dup-1"))
    with pytest.raises(IntegrityError), transaction.atomic(), batched_inserts():
        insert_rows([session("rolled-back")])
        insert_rows(keys("dup-1"))  # the hash's unique index refuses it at the flush
    assert hashes() == ["dup-1"]
    assert not Session.objects.filter(session_key="rolled-back").exists()


def test_an_exception_in_the_block_sends_nothing():
    with (CaptureQueriesContext(connection) as queries, pytest.raises(RuntimeError),
          transaction.atomic(), batched_inserts()):
        insert_rows(keys("gone-1"))
        raise RuntimeError("refused")
    assert not any("INSERT" in q["sql"] for q in queries)
    assert not ApiKey.objects.filter(key_hash="gone-1").exists()

