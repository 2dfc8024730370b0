"""Inputs of the quote use cases: JSON in camelCase, checked on decode where msgspec can."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from domain.enums import QuoteStatus

Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{3}$", examples=["USD", "NGN"])]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
Reason = Annotated[str, msgspec.Meta(max_length=1_000)]
ValidUntil = Annotated[datetime, msgspec.Meta(tz=True)]

# Prices are stored as NUMERIC(18, 4): at most 14 digits before the point and 4 after.
MAX_UNIT_PRICE = Decimal("99999999999999.9999")
PRICE_PLACES = 4


class PriceLine(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A unit price for one line, as a JSON number or a decimal string ("12.50")."""

    id: uuid.UUID
    unit_price: Decimal


class PriceQuote(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Staff pricing: a unit price per line (every line must end up priced), the currency
    (ISO 4217) and the offer's deadline, a timezone-aware time in the future."""

    lines: Annotated[list[PriceLine], msgspec.Meta(min_length=1, max_length=200)]
    currency: Currency
    valid_until: ValidUntil

    def __post_init__(self) -> None:
        self.currency = self.currency.upper()


class PostMessage(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    body: Body

    def __post_init__(self) -> None:
        self.body = self.body.replace("\x00", "").strip()
        if not self.body:
            raise ValueError("body must not be blank")


class MoveQuote(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Staff moving a quote by hand (reject, expire, accept on the customer's behalf, or back
    to QUOTED at the standing prices); pricing goes through the price endpoint."""

    status: QuoteStatus
    reason: Reason | None = None


class Decision(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The customer's accept or reject, with an optional reason."""

    reason: Reason | None = None
