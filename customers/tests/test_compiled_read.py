"""``stateset.db.CompiledRead``: a read compiled once answers every later call with that call's
ids and the rows as they are now, as the ORM's own read would (values, converters, deferred
fields), and refuses a shape it cannot compile safely."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connection
from django.db.models import Value
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from customers.tests.factories import CustomerFactory
from stateset.db import CompiledRead

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_call_sends_its_own_id_and_reads_the_row_as_it_is_now():
    read = CompiledRead(lambda pk: Customer.objects.filter(pk=pk)[:1])
    first, second = CustomerFactory(metadata={"tier": "gold"}), CustomerFactory()
    assert [c.pk for c in read(first.pk)] == [first.pk]
    assert [c.pk for c in read(str(second.pk))] == [second.pk]
    Customer.objects.filter(pk=first.pk).update(metadata={"tier": "silver"}, first_name="Renamed")
    again = read(first.pk)[0]
    # JSON comes back decoded (the field's converter ran), the rest as the ORM loads it.
    assert again.metadata == {"tier": "silver"} and again.first_name == "Renamed"
    assert again == Customer.objects.get(pk=first.pk)
    assert read(uuid.uuid4()) == []
    assert len(read._compiled) == 1  # one shape, compiled once


def test_deferred_fields_stay_deferred_and_load_on_access():
    read = CompiledRead(lambda pk: Customer.objects.filter(pk=pk).defer("metadata")[:1])
    customer = CustomerFactory(metadata={"a": 1})
    found = read(customer.pk)[0]
    assert "metadata" in found.get_deferred_fields()
    assert found._state.adding is False and found._state.db == "default"
    with CaptureQueriesContext(connection) as queries:
        assert found.metadata == {"a": 1}
    assert len(queries) == 1


def test_a_list_of_ids_is_one_compilation_per_length():
    read = CompiledRead(lambda ids: Customer.objects.filter(id__in=ids).order_by("email"))
    a, b, c = (CustomerFactory(email=f"{n}@example.com", metadata={"n": n}) for n in "abc")
    assert [x.email for x in read((a.pk, b.pk))] == ["a@example.com", "b@example.com"]
    assert [x.email for x in read((c.pk, a.pk))] == ["a@example.com", "c@example.com"]
    assert [x.email for x in read((c.pk,))] == ["c@example.com"]
    assert read((b.pk,))[0].metadata == {"n": "b"}
    assert sorted(read._compiled) == [(1,), (2,)]


def test_each_call_is_one_query():
    read = CompiledRead(lambda pk: Customer.objects.filter(pk=pk)[:1])
    customer = CustomerFactory()
    read(customer.pk)
    with CaptureQueriesContext(connection) as queries:
        read(customer.pk)
    with CaptureQueriesContext(connection) as orm:
        list(Customer.objects.filter(pk=customer.pk)[:1])
    assert len(queries) == 1 and queries[0]["sql"] == orm[0]["sql"]  # the ORM's own statement


def test_a_malformed_id_is_a_value_error():
    read = CompiledRead(lambda pk: Customer.objects.filter(pk=pk)[:1])
    with pytest.raises(ValueError):
        read("not-a-uuid")


def test_a_shape_whose_id_is_not_one_parameter_is_refused():
    twice = CompiledRead(lambda pk: Customer.objects.filter(pk=pk) | Customer.objects.filter(
        pk=pk))
    with pytest.raises(TypeError, match="one parameter"):
        twice(uuid.uuid4())
    annotated = CompiledRead(lambda pk: Customer.objects.filter(pk=pk).annotate(n=Value(1)))
    with pytest.raises(TypeError, match="one model's columns"):
        annotated(uuid.uuid4())


def test_threads_compiling_at_once_read_their_own_rows():
    read = CompiledRead(lambda pk: Customer.objects.filter(pk=pk)[:1])
    customers = [CustomerFactory() for _ in range(8)]
    found: dict[int, uuid.UUID] = {}
    barrier = threading.Barrier(len(customers))

    def work(index: int) -> None:
        barrier.wait()
        try:
            found[index] = read(customers[index].pk)[0].pk
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(customers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == {i: c.pk for i, c in enumerate(customers)}


def test_text_keys_are_sent_as_given_one_compilation_per_count():
    read = CompiledRead(lambda emails: Customer.objects.filter(email__in=emails).order_by("email"),
                        key=str)
    first, second = CustomerFactory(email="a@example.com"), CustomerFactory(email="b@example.com")
    assert [c.pk for c in read(("a@example.com",))] == [first.pk]
    assert [c.pk for c in read(("b@example.com", "a@example.com"))] == [first.pk, second.pk]
    assert read(("A@EXAMPLE.COM",)) == []  # as given: no case folding the build did not ask for
    assert sorted(read._compiled) == [(1,), (2,)]
    with pytest.raises(TypeError, match="text key"):
        read((uuid.uuid4(),))


def test_a_text_lookup_that_transforms_its_argument_is_refused():
    # __icontains sends "%stand-in …%": the stand-in is not one parameter as given.
    read = CompiledRead(lambda name: Customer.objects.filter(first_name__icontains=name), key=str)
    with pytest.raises(TypeError, match="one parameter"):
        read("x")
