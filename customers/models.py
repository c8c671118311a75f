"""Tables of customers and their addresses (SPEC §4.2)."""

from __future__ import annotations

import uuid

from django.contrib.postgres.indexes import OpClass
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

# Digits, spaces and ( ) . - only, optionally starting with + (the API and imports check it).
phone_validator = RegexValidator(r"^\+?[0-9(][0-9 ().-]{1,30}$",
                                 "Digits, spaces and ( ) . - only, optionally starting with +.",
                                 code="invalid_phone")


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    phone = models.CharField(max_length=32, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Case-insensitive uniqueness; the same index serves lookups by lower(email).
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_uniq"),
        ]
        indexes = [
            # ``?search=`` is a prefix match on lower(email), lower(first_name) or lower(last_name);
            # text_pattern_ops lets ``LIKE 'abc%'`` use them whatever the database collation.
            models.Index(OpClass(Lower("email"), name="text_pattern_ops"),
                         name="customer_email_prefix_idx"),
            models.Index(OpClass(Lower("first_name"), name="text_pattern_ops"),
                         name="customer_first_prefix_idx"),
            models.Index(OpClass(Lower("last_name"), name="text_pattern_ops"),
                         name="customer_last_prefix_idx"),
            # sort_by=email walks this index.
            models.Index(fields=["email", "id"], name="customer_email_sort_idx"),
        ]

    def __str__(self) -> str:
        return self.email


class Address(models.Model):
    class Kind(models.TextChoices):
        SHIPPING = "shipping"
        BILLING = "billing"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200, blank=True, default="")
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100)
    region = models.CharField(max_length=100, blank=True, default="")
    postal_code = models.CharField(max_length=20, blank=True, default="")
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2",
                               validators=[RegexValidator(r"^[A-Z]{2}$",
                                                          "Use an ISO 3166-1 alpha-2 code such as "
                                                          "US.",
                                                          code="invalid_country")])
    phone = models.CharField(max_length=32, blank=True, default="")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The address's own ETag (If-Match on PATCH/PUT/DELETE of the address); every write bumps it.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "addresses"
        ordering = ["created_at", "id"]
        constraints = [
            # At most one default address of each kind per customer, enforced by the database.
            models.UniqueConstraint(fields=["customer", "kind"], condition=Q(is_default=True),
                                    name="address_one_default_per_kind"),
            models.CheckConstraint(condition=Q(country__regex=r"^[A-Z]{2}$"),
                                   name="address_country_iso"),
            models.CheckConstraint(condition=Q(kind__in=["shipping", "billing"]),
                                   name="address_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.line1}, {self.city} {self.country}"
