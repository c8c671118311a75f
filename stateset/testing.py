"""Helpers for the test suites of every app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection
from rest_framework.test import APIClient


def run_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Start ``count`` threads at once (a barrier), each running ``work(i)``; an exception is
    returned as the thread's result. Each thread gives its database connection back at the end."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results


def run_threads_cleanly(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``run_threads``, failing the test if any thread raised (a deadlock, a database error)."""
    results = run_threads(count, work)
    errors = [result for result in results if isinstance(result, BaseException)]
    assert not errors, errors
    return results


def client_for(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw_key)
    return client


def staff_client(*permissions: str, username: str = "") -> Any:
    """A Django test client logged in as a staff user holding exactly ``permissions``
    ("app.codename") — not a superuser, so every permission check is the real one."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    user = User.objects.create_user(username or f"staff{User.objects.count()}", password="x",
                                    is_staff=True)
    for permission in permissions:
        app, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app,
                                                         codename=codename))
    client = Client()
    client.force_login(user)
    return client

def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error payload of an envelope answer, after checking the status and the envelope's
    shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False and set(body) == {"success", "error", "meta"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["meta"]["request_id"] == response["X-Request-ID"]
    assert body["meta"]["timestamp"].endswith("Z")
    error: dict[str, Any] = body["error"]
    return error


def data_of(response: Any, status: int = 200) -> Any:
    """The data of a success envelope, after checking the status."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is True
    return body["data"]


def staff_groups() -> None:
    """The staff groups as the data migration made them (SPEC §5). A transactional test's flush
    empties ``auth_group`` (Django's post-flush recreates permissions, not data migrations' rows),
    so tests that need the groups run the migration's own operation again when they are gone."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    from stateset import roles

    if Group.objects.filter(name__in=roles.ROLES).count() == len(roles.ROLES):
        return
    migration = importlib.import_module("stateset.migrations.0004_staff_roles").Migration
    with connection.schema_editor() as editor:
        migration.operations[0].code(apps, editor)
