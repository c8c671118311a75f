"""Tables of the catalog: products (SPEC §4.1)."""

from __future__ import annotations

import uuid

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

# Letters, digits and ``._-``: a SKU travels in URLs (``/products/by-sku/{sku}``), CSV exports and
# labels, so it may hold neither spaces nor slashes.
SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
sku_validator = RegexValidator(SKU_PATTERN, "A SKU holds letters, digits, '.', '_' and '-', "
                               "and starts with a letter or digit.", code="invalid_sku")
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code such as USD.",
                                    code="invalid_currency")


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=64, validators=[sku_validator])
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    price = models.DecimalField(max_digits=13, decimal_places=3, validators=[MinValueValidator(0)],
                                help_text="At most the currency's minor digits (stateset.money).")
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    allow_backorder = models.BooleanField(default=False, db_default=False, help_text=(
        "Orders may take more than is in stock; the rest waits and is allocated first come, first "
        "served."))
    is_active = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Name and SKU weigh A, description B; stored by PostgreSQL itself, indexed with GIN.
    search_vector = models.GeneratedField(
        expression=SearchVector("name", weight="A", config="english")
        + SearchVector("sku", weight="A", config="simple")
        + SearchVector("description", weight="B", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # fastupdate off: rows go straight into the index instead of a pending list that only
            # VACUUM flushes, so search cost (and the planner's choice of this index) stays
            # predictable after bulk loads. The catalog is read far more than it is written.
            GinIndex(fields=["search_vector"], name="product_search_gin", fastupdate=False),
            models.Index(fields=["is_active"], name="product_active_idx",
                         condition=Q(is_active=True)),
            models.Index(fields=["sku"], name="product_sku_idx"),
            models.Index(fields=["price"], name="product_price_idx"),
            # sort_by=name walks this index instead of sorting the table.
            models.Index(fields=["name", "id"], name="product_name_idx"),
            # Search by SKU prefix (``UPPER(sku) LIKE 'KIT-00%'``) in any collation.
            models.Index(OpClass(Upper("sku"), name="text_pattern_ops"),
                         name="product_sku_prefix_idx"),
        ]
        constraints = [
            # SKUs are unique in any case ("abc-1" and "ABC-1" are one SKU); lookups use
            # sku__iexact.
            models.UniqueConstraint(Upper("sku"), name="product_sku_ci_uniq"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
            models.CheckConstraint(condition=Q(currency__regex=r"^[A-Z]{3}$"),
                                   name="product_currency_iso"),
            models.CheckConstraint(condition=~Q(sku=""), name="product_sku_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"
