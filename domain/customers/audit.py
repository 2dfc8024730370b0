"""The customer audit trail: who changed which field of a customer, when, from what to what."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.models import CUSTOMER_AUDIT


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list | bool | int | float):
        return json.dumps(value, sort_keys=True, default=str)
    return str(getattr(value, "value", value))


def customer_audit_rows(
    customer_id: uuid.UUID,
    actor: str,
    at: datetime,
    action: str,
    changes: Mapping[str, tuple[object, object]],
) -> list[dict[str, Any]]:
    """One entry per field (in the API's camelCase names) whose value really changed."""
    return [
        {
            "customer_id": customer_id,
            "actor": actor,
            "at": at,
            "action": action,
            "field": field,
            "from_value": _text(before),
            "to_value": _text(after),
        }
        for field, (before, after) in changes.items()
        if _text(before) != _text(after)
    ]


async def customer_history(conn: AsyncConnection, customer_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(CUSTOMER_AUDIT)
        .where(CUSTOMER_AUDIT.c.customer_id == customer_id)
        .order_by(CUSTOMER_AUDIT.c.at, CUSTOMER_AUDIT.c.id)
    )
    return [
        {
            "actor": r.actor,
            "at": r.at,
            "action": r.action,
            "field": r.field,
            "from": r.from_value,
            "to": r.to_value,
        }
        for r in rows
    ]
