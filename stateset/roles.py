"""Who may do what in the back office (SPEC §5): the four staff groups and exactly their
permissions, created by the data migration ``stateset/0004_staff_roles`` (and by any later
migration that calls :func:`apply_roles` again, e.g. when a model is added to :data:`MODELS`).

Plain strings only: the platform imports no domain app. A staff session's API scopes follow from
the same permissions (``stateset.api.auth.scopes_for_permissions``); the moves that are not plain
model changes are custom permissions (:data:`MOVES`) that the API's endpoints for those moves
accept from a staff session (``staff_permissions`` on the view).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Every model of the business, by app: what "view everything" means. Users, groups, sessions and
# the admin's own log are not the business; only a superuser manages them.
MODELS: dict[str, tuple[str, ...]] = {
    "stateset": ("apikey", "idempotencyrecord"),
    "catalog": ("product",),
    "customers": ("customer", "address"),
    "inventory": ("location", "inventoryitem", "reservation", "stockmovement", "backorder"),
    "orders": ("order", "orderitem", "orderevent", "shippingline", "payment", "channelorder",
               "orderday"),
    "fulfillment": ("shipment", "shipmentitem"),
    "returns": ("return", "returnitem"),
    "webhooks": ("event", "endpoint", "delivery"),
    "imports": ("import", "importchunk", "importkey"),
}

# Moves that are not plain model changes: (app, model, codename, name). The models declare them
# in their Meta too; the migration creates any that are missing, so it depends on no app's.
MOVES: tuple[tuple[str, str, str, str], ...] = (
    ("orders", "order", "record_payment", "Can record a payment of an order"),
    ("orders", "order", "set_prices", "Can price an order differently from the catalog"),
    ("returns", "return", "receive_return", "Can receive a return"),
    ("returns", "return", "refund_return", "Can refund a return"),
)

SUPPORT, WAREHOUSE, FINANCE, READ_ONLY = "Support", "Warehouse", "Finance", "Read-only"


def _grant(verbs: Iterable[str], app: str, *models: str) -> set[str]:
    """``_grant(("view", "change"), "inventory", "location")`` → ``{"inventory.view_location",
    "inventory.change_location"}``; no model names every model of the app."""
    return {f"{app}.{verb}_{model}" for model in (models or MODELS[app]) for verb in verbs}


def _view(*apps: str) -> set[str]:
    return set().union(*(_grant(("view",), app) for app in apps))


VIEW_EVERYTHING = frozenset(_view(*MODELS))
EDIT = ("view", "add", "change")

ROLES: dict[str, frozenset[str]] = {
    # Orders and customers (view, add, change), returns (view, add, change), catalog and stock
    # (view only). An order's and a return's lines change through their parent's services.
    SUPPORT: frozenset(
        _view("orders", "customers", "returns", "catalog", "inventory")
        | _grant(EDIT, "orders", "order") | _grant(EDIT, "customers")
        | _grant(EDIT, "returns", "return")),
    # Stock (view, change; the backorder queue view), shipments (view, add, change), returns (view,
    # receive), orders, customers and catalog (view only).
    WAREHOUSE: frozenset(
        _view("inventory", "fulfillment", "returns", "orders", "customers", "catalog")
        | _grant(("change",), "inventory", "inventoryitem", "location", "reservation",
                 "stockmovement")
        | _grant(("add", "change"), "fulfillment", "shipment")
        | {"returns.receive_return"}),
    # Payments (view, add), recording payments and refunding returns, everything else view only.
    FINANCE: VIEW_EVERYTHING | {"orders.add_payment", "orders.record_payment",
                                "returns.refund_return"},
    READ_ONLY: VIEW_EVERYTHING,
}


def apply_roles(apps: Any, schema_editor: Any) -> None:
    """Create (or bring back to :data:`ROLES`) the four groups. Idempotent. The content types and
    permissions they need are created when missing, named as Django's ``post_migrate`` would name
    them, so this runs before (or without) the apps' own permission rows."""
    content_type_model = apps.get_model("contenttypes", "ContentType")
    permission_model = apps.get_model("auth", "Permission")
    group_model = apps.get_model("auth", "Group")
    db = schema_editor.connection.alias
    names = {(app, model, codename): name for app, model, codename, name in MOVES}
    for app, models in MODELS.items():
        for model in models:
            for verb in ("add", "change", "delete", "view"):
                verbose = _verbose_name(apps, app, model)
                names[app, model, f"{verb}_{model}"] = f"Can {verb} {verbose}"
    needed = set().union(*ROLES.values())
    permissions: dict[str, Any] = {}
    content_types: dict[tuple[str, str], Any] = {}
    for (app, model, codename), name in sorted(names.items()):
        label = f"{app}.{codename}"
        if label not in needed:
            continue
        if (app, model) not in content_types:
            content_types[app, model] = content_type_model.objects.using(db).get_or_create(
                app_label=app, model=model)[0]
        permissions[label] = permission_model.objects.using(db).get_or_create(
            content_type=content_types[app, model], codename=codename,
            defaults={"name": name[:255]})[0]
    unknown = needed - set(permissions)
    if unknown:  # a typo in ROLES would otherwise quietly grant less
        raise ValueError(f"Roles name unknown permissions: {sorted(unknown)}")
    for group_name, labels in ROLES.items():
        group = group_model.objects.using(db).get_or_create(name=group_name)[0]
        group.permissions.set([permissions[label] for label in sorted(labels)])


def remove_roles(apps: Any, schema_editor: Any) -> None:
    """The migration's reverse: the groups go (their members lose what the groups gave)."""
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(
        name__in=ROLES).delete()


def _verbose_name(apps: Any, app: str, model: str) -> str:
    try:
        return str(apps.get_model(app, model)._meta.verbose_name_raw)
    except LookupError:  # an app whose migrations are not part of this state
        return model
