from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_postrun, task_prerun
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from audit import context, registry, triggers

        context.AUDITED_TABLES = registry.audited_tables()
        connection_created.connect(context.install, dispatch_uid="audit-context")
        task_prerun.connect(_task_started, dispatch_uid="audit-task-started", weak=False)
        task_postrun.connect(_task_finished, dispatch_uid="audit-task-finished", weak=False)
        post_migrate.connect(triggers.sync, sender=self, dispatch_uid="audit-triggers")


_TOKENS: dict[str, Any] = {}


def _task_started(task_id: str | None = None, task: Any = None, **_kwargs: Any) -> None:
    from audit import context

    _TOKENS[task_id or ""] = context.open_scope(actor=f"task:{getattr(task, 'name', '?')}",
                                                task_id=task_id)


def _task_finished(task_id: str | None = None, **_kwargs: Any) -> None:
    from audit import context

    token = _TOKENS.pop(task_id or "", None)
    if token is not None:
        try:
            context.close_scope(token)
        except ValueError:  # opened in another context (a thread pool): nothing to restore
            pass
