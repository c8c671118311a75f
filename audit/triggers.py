"""Installing and removing the audit's triggers (``audit.models`` declares them).

They live outside the audited apps' migrations (``audit.models`` says why), so their lifecycle is
this module's:

- ``audit/migrations/0002_triggers`` installs them going forward and removes them going back, so a
  rollback past the audit (``migrate stateset 0001``, or the migration executor driven by a test)
  drops them before the event tables and before any column they read; a later audit migration that
  changes an event table ends by installing them again (``0003``);
- after every ``migrate`` (``post_migrate``) :func:`sync` installs them again from the code — a
  changed tracked field list takes effect — or removes them if the event tables are gone.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.db import DatabaseError, connections, transaction
from pghistory import trigger as pghistory_trigger


def audit_triggers() -> list[tuple[Any, Any]]:
    found: list[tuple[Any, Any]] = []
    for model, trigger in pgtrigger.registered():
        event_model: Any = getattr(trigger, "event_model", None)
        if isinstance(trigger, pghistory_trigger.Event) and event_model is not None \
                and event_model._meta.app_label == "audit":
            found.append((model, trigger))
    return found


def install(using: str, *, best_effort: bool = False,
            event_models: tuple[str, ...] | None = None) -> int:
    """Install every audit trigger (only those writing to ``event_models``, by model name, when
    given); with ``best_effort`` skip one whose table or columns do not exist yet (a migration
    later in the plan adds them; ``sync`` installs it after the run)."""
    done = 0
    for model, trigger in audit_triggers():
        if event_models is not None and trigger.event_model.__name__ not in event_models:
            continue
        try:
            with transaction.atomic(using=using):
                trigger.install(model, database=using)
            done += 1
        except DatabaseError:
            if not best_effort:
                raise
    return done


def uninstall(using: str, *, event_models: tuple[str, ...] | None = None) -> None:
    """Remove the audit triggers (only those writing to ``event_models``, by model name, when
    given: a migration that drops those event tables)."""
    tables = set(connections[using].introspection.table_names())
    for model, trigger in audit_triggers():
        if event_models is not None and trigger.event_model.__name__ not in event_models:
            continue
        if model._meta.db_table in tables:
            trigger.uninstall(model, database=using)


def sync(using: str = "default", **_kwargs: Any) -> None:
    """``post_migrate``: each trigger exists exactly when its event table does (a rollback to an
    earlier audit migration keeps the trails that migration had)."""
    tables = set(connections[using].introspection.table_names())
    present: list[str] = []
    missing: list[str] = []
    for _, trigger in audit_triggers():
        name = trigger.event_model.__name__
        (present if trigger.event_model._meta.db_table in tables else missing).append(name)
    if missing:
        uninstall(using, event_models=tuple(missing))
    if present:
        install(using, event_models=tuple(present))
