"""The list query string of the API (SPEC §3): ``page``, ``limit`` (``per_page``), ``cursor``,
``sort_by``/``sort_order`` and each resource's filters, validated strictly. The query side of lists
(totals, cursors, pages) is ``stateset.pagination``."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from rest_framework import serializers

from stateset.api.serializers import validated
from stateset.errors import ValidationFailed
from stateset.pagination import ListParams, Sort

PAGINATION_PARAMS = frozenset({"page", "limit", "per_page", "cursor", "sort_by", "sort_order",
                               "format"})


def _int_param(data: dict[str, str], name: str, errors: dict[str, Any], *,
               maximum: int) -> int | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[name] = ["A valid integer is required."]
        return None
    if not 1 <= value <= maximum:
        errors[name] = [f"Ensure this value is between 1 and {maximum}."]
        return None
    return value


@functools.cache
def _filter_names(filters: type[serializers.Serializer[Any]]) -> frozenset[str]:
    return frozenset(filters().fields)


def parse_list_params(
    query_params: Any,
    *,
    filters: type[serializers.Serializer[Any]] | None = None,
    sort_fields: dict[str, str] | None = None,
    default_sort: str = "created_at",
    default_order: str = "desc",
) -> ListParams:
    """Validate the query string of a list request. Unknown parameters, filters or sort fields are a
    422 ``invalid_parameter`` naming them, never silently ignored. The paging parameters are parsed
    by hand (this runs on every list request); filters go through their serializer when present."""
    sort_fields = sort_fields or {default_sort: default_sort}
    data = {key: query_params.get(key) for key in query_params}
    filter_names = _filter_names(filters) if filters is not None else frozenset()
    allowed = PAGINATION_PARAMS | filter_names
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationFailed(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            code="invalid_parameter",
            details={"unknown": unknown, "allowed": sorted(allowed - {"format"})},
        )
    errors: dict[str, Any] = {}
    page = _int_param(data, "page", errors, maximum=1_000_000) or 1
    limit = (_int_param(data, "limit", errors, maximum=settings.API_MAX_PAGE_SIZE)
             or _int_param(data, "per_page", errors, maximum=settings.API_MAX_PAGE_SIZE)
             or settings.API_DEFAULT_PAGE_SIZE)
    cursor = data.get("cursor") or None
    if cursor is not None and len(cursor) > 512:
        errors["cursor"] = ["Ensure this field has no more than 512 characters."]
    order = data.get("sort_order") or default_order
    if order not in ("asc", "desc"):
        errors["sort_order"] = ['Use "asc" or "desc".']
    sort_by = data.get("sort_by") or default_sort
    if sort_by not in sort_fields:
        errors["sort_by"] = [f"Sort by one of: {', '.join(sorted(sort_fields))}."]
    filter_values: dict[str, Any] = {}
    given_filters = {k: v for k, v in data.items() if k in filter_names}
    if filters is not None and given_filters:
        try:
            filter_values = {k: v for k, v in validated(filters, given_filters).items()
                             if v is not None}
        except serializers.ValidationError as exc:
            detail = exc.detail  # a serializer's errors: a dict by field
            errors.update(detail if isinstance(detail, dict) else {"non_field_errors": detail})
    if errors:
        raise ValidationFailed("Invalid query parameters.", code="invalid_parameter",
                               details=errors)
    return ListParams(
        page=page,
        limit=limit,
        cursor=cursor,
        sort=Sort(field=sort_fields[sort_by], descending=order == "desc"),
        filters=filter_values,
    )
