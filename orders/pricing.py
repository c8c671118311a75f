"""Prices, discounts, taxes and shipping of an order (SPEC §4.4.1): pure arithmetic, no queries.

Every amount is a ``Decimal`` rounded half-up to the currency's minor unit (``stateset.money``) *per
line*; totals are sums of rounded lines, so ``total_amount = subtotal - discount_total +
shipping_total + tax_total`` (exclusive tax) holds to the last digit, and each line knows what was
paid for it (its net price and tax share: refunds need them).

- A line's own ``discount`` is an amount off its total (at most that total).
- Order discounts are summed and spread over the lines in proportion to their totals after their own
  discounts; the rounding remainder goes to the largest line (the first of equals).
- Taxes are the channel's own (sent per line and per shipping line) or computed from one rate — the
  shipping address's ``COUNTRY-REGION``, else its ``COUNTRY``, from ``[tax.rates]`` — on each line's
  net price and, with ``[tax] shipping_taxable``, on shipping. With ``prices_include_tax`` the tax
  is extracted from the price (``net × rate / (1 + rate)``) instead of added to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from stateset.errors import ValidationFailed
from stateset.money import MAX_AMOUNT, ZERO, money_str, round_money


@dataclass(frozen=True)
class Tax:
    name: str
    rate: Decimal
    amount: Decimal

    def as_dict(self, currency: str) -> dict[str, Any]:
        return {"name": self.name, "rate": str(self.rate),
                "amount": money_str(self.amount, currency)}


@dataclass(frozen=True)
class TaxRules:
    """How computed taxes apply: ``rate`` is None when no rate matches (no tax)."""

    name: str
    rate: Decimal | None
    prices_include_tax: bool
    shipping_taxable: bool

    @classmethod
    def for_address(cls, address: Mapping[str, Any] | None, *,
                    rates: Mapping[str, str] | None = None,
                    prices_include_tax: bool | None = None,
                    shipping_taxable: bool | None = None) -> TaxRules:
        """The rules of ``[tax]`` for a shipping address (its ``country`` and ``region``): the
        region's rate beats the country's."""
        rates = settings.TAX_RATES if rates is None else rates
        country = str((address or {}).get("country") or "").strip().upper()
        region = str((address or {}).get("region") or "").strip().upper()
        name, rate = "", None
        for key in (f"{country}-{region}" if country and region else None, country or None):
            if key and key in rates:
                name, rate = key, Decimal(rates[key])
                break
        return cls(
            name=name, rate=rate,
            prices_include_tax=settings.TAX_PRICES_INCLUDE_TAX if prices_include_tax is None
            else prices_include_tax,
            shipping_taxable=settings.TAX_SHIPPING_TAXABLE if shipping_taxable is None
            else shipping_taxable,
        )

    def tax_on(self, amount: Decimal, currency: str) -> list[Tax]:
        if self.rate is None or not self.rate:
            return []
        share = (amount * self.rate / (1 + self.rate) if self.prices_include_tax
                 else amount * self.rate)
        return [Tax(self.name, self.rate, round_money(share, currency))]


@dataclass(frozen=True)
class LineIn:
    """A line as priced: its unit price is decided (the catalog's, or the channel's)."""

    quantity: int
    unit_price: Decimal
    discount: Decimal = ZERO
    taxes: Sequence[Tax] | None = None  # the channel's own; None: computed


@dataclass(frozen=True)
class ShippingIn:
    method: str
    amount: Decimal
    taxes: Sequence[Tax] | None = None


@dataclass
class PricedLine:
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    discount_total: Decimal = ZERO
    net_total: Decimal = ZERO
    tax_total: Decimal = ZERO
    taxes: list[Tax] = field(default_factory=list)


@dataclass
class PricedShipping:
    method: str
    amount: Decimal
    tax_total: Decimal = ZERO
    taxes: list[Tax] = field(default_factory=list)


@dataclass
class PricedOrder:
    currency: str
    lines: list[PricedLine]
    shipping: list[PricedShipping]
    subtotal: Decimal
    discount_total: Decimal
    shipping_total: Decimal
    tax_total: Decimal
    total_amount: Decimal
    prices_include_tax: bool


def _too_large(name: str) -> ValidationFailed:
    return ValidationFailed(f"{name} is too large.", code="invalid_value",
                            details={name: [f"The order's amounts must stay below {MAX_AMOUNT}."]})


def spread(amount: Decimal, bases: Sequence[Decimal], currency: str) -> list[Decimal]:
    """``amount`` spread over ``bases`` in proportion, each share rounded; the rounding remainder
    goes to the largest base (the first of equals), so the shares sum to ``amount`` exactly and no
    share exceeds its base (``amount`` must not exceed their sum)."""
    total = sum(bases, ZERO)
    if not amount or not total:
        return [ZERO for _ in bases]
    shares = [round_money(amount * base / total, currency) for base in bases]
    remainder = amount - sum(shares, ZERO)
    for index in sorted(range(len(bases)), key=lambda i: (-bases[i], i)):
        if not remainder:
            break
        room = bases[index] - shares[index] if remainder > 0 else shares[index]
        step = min(abs(remainder), room)
        shares[index] += step if remainder > 0 else -step
        remainder -= step if remainder > 0 else -step
    return shares


def price_order(*, currency: str, lines: Sequence[LineIn], discounts: Decimal = ZERO,
                shipping: Sequence[ShippingIn] = (), rules: TaxRules) -> PricedOrder:
    """Price every line and shipping line. Raises ValidationFailed ``discount_exceeds`` (a line
    discount above its total, order discounts above what the lines still cost) or
    ``invalid_value`` (an amount beyond ``stateset.money.MAX_AMOUNT``), naming the field."""
    priced: list[PricedLine] = []
    errors: dict[str, Any] = {}
    for index, given in enumerate(lines):
        total = round_money(given.unit_price * given.quantity, currency)
        if total > MAX_AMOUNT:
            raise _too_large(f"items[{index}]")
        if given.discount > total:
            errors[str(index)] = {
                "discount": [f"At most the line's total, {money_str(total, currency)}."]}
        priced.append(PricedLine(quantity=given.quantity, unit_price=given.unit_price,
                                 total_price=total, discount_total=given.discount))
    if errors:
        raise ValidationFailed("A line discount exceeds its line.", code="discount_exceeds",
                               details={"items": errors})
    bases = [line.total_price - line.discount_total for line in priced]
    if discounts > sum(bases, ZERO):
        raise ValidationFailed(
            "The order discounts exceed what the lines cost after their own discounts.",
                               code="discount_exceeds",
                               details={
                                   "discounts": [
                                       f"At most {money_str(sum(bases, ZERO), currency)}."]})
    for line, share in zip(priced, spread(discounts, bases, currency), strict=True):
        line.discount_total += share
        line.net_total = line.total_price - line.discount_total
    for line, given in zip(priced, lines, strict=True):
        line.taxes = (list(given.taxes) if given.taxes is not None
                      else rules.tax_on(line.net_total, currency))
        line.tax_total = sum((tax.amount for tax in line.taxes), ZERO)
    shipped: list[PricedShipping] = []
    for ship in shipping:
        if ship.taxes is not None:
            taxes = list(ship.taxes)
        else:
            taxes = rules.tax_on(ship.amount, currency) if rules.shipping_taxable else []
        shipped.append(PricedShipping(method=ship.method, amount=ship.amount, taxes=taxes,
                                      tax_total=sum((tax.amount for tax in taxes), ZERO)))
    subtotal = sum((line.total_price for line in priced), ZERO)
    discount_total = sum((line.discount_total for line in priced), ZERO)
    shipping_total = sum((ship.amount for ship in shipped), ZERO)
    tax_total = sum((line.tax_total for line in priced),
                    ZERO) + sum((ship.tax_total for ship in shipped), ZERO)
    total = subtotal - discount_total + shipping_total
    if not rules.prices_include_tax:
        total += tax_total
    for name, value in (("subtotal", subtotal), ("shipping_total", shipping_total),
                        ("tax_total", tax_total), ("total_amount", total)):
        if value > MAX_AMOUNT:
            raise _too_large(name)
    return PricedOrder(currency=currency, lines=priced, shipping=shipped, subtotal=subtotal,
                       discount_total=discount_total, shipping_total=shipping_total,
                       tax_total=tax_total,
                       total_amount=total, prices_include_tax=rules.prices_include_tax)
