"""Money: ``Decimal`` amounts in a currency's minor unit (ISO 4217), rounded half-up (SPEC §4.4.1).

The one table of minor digits lives here: every other currency has two. Amounts are stored in
columns with three decimals (enough for KWD) and always written already rounded to their
currency's digits, so a stored amount reads back exactly as it was computed; answers render them
with those digits ("29.99" USD, "1500" JPY, "1.250" KWD).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from stateset.errors import ValidationFailed

# ISO 4217 currencies whose minor unit is not 1/100.
_MINOR_DIGITS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                     "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
MAX_DIGITS = 3
"""The most minor digits any currency has: the scale of every money column."""
MAX_AMOUNT = Decimal("1000000000")
"""The largest amount one line, total or payment may reach (10^9 in the currency): far below the
columns' limit (numeric(16, 3)), so no sum of bounded amounts can overflow them."""
ZERO = Decimal(0)


# A decimal as text: ASCII digits, an optional minus sign and fraction ("12", "-0.50"). Python's
# Decimal also reads "1_000", "1e3", "+5", " 12 " and other scripts' digits, which no client means.
DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number or decimal string (:data:`DECIMAL_TEXT`) as a Decimal, else None (booleans,
    other text, other types). The caller checks that it is finite and in range."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str) and len(value) <= 40 and DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    return None


def minor_digits(currency: str) -> int:
    return _MINOR_DIGITS.get(currency, 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_digits(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to the currency's minor unit; ``-0`` becomes ``0``."""
    rounded = amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)
    return rounded if rounded else abs(rounded)


def money_str(amount: Decimal | int | str | None, currency: str) -> str | None:
    """How an answer shows an amount: a string with exactly the currency's digits."""
    if amount is None:
        return None
    return str(round_money(Decimal(amount), currency))


def parse_money(value: Any, currency: str, name: str, *, allow_zero: bool = True,
                maximum: Decimal = MAX_AMOUNT) -> Decimal:
    """A client's amount: a decimal string or number, not negative (zero unless refused), at most
    the currency's minor digits, at most ``maximum``; ``-0.00`` is ``0``. ValidationFailed
    (``validation_error``) naming ``name`` otherwise."""
    amount = to_decimal(value)
    if amount is None or not amount.is_finite():
        raise ValidationFailed(f"{name} must be a decimal amount.",
                               details={name: ["A valid decimal amount is required."]})
    exponent = int(amount.as_tuple().exponent)  # an int for a finite amount
    if exponent < -minor_digits(currency) and amount != round_money(amount, currency):
        raise ValidationFailed(f"{name} has more decimals than {currency} allows.",
                               details={
                                   name: [
                                       f"At most {minor_digits(currency)} decimal places in "
                                       f"{currency}."]})
    amount = round_money(amount, currency)
    if amount < 0 or (amount == 0 and not allow_zero) or amount > maximum:
        rule = f"between {'0' if allow_zero else 'more than 0'} and {maximum}"
        raise ValidationFailed(f"{name} must be {rule}.",
                               details={name: [f"Must be {rule}."]})
    return amount
