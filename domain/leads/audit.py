"""The lead audit trail: who changed what on a lead, when, from which value to which."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.models import LEAD_AUDIT

# Lead fields whose changes are audited, by their column name.
AUDITED_FIELDS = ("status", "assigned_to", "lead_score")


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))[:254]


def audit_rows(
    lead_id: uuid.UUID,
    actor: str,
    at: datetime,
    action: str,
    changes: Mapping[str, tuple[object, object]],
) -> list[dict[str, Any]]:
    """One entry per field that really changed."""
    return [
        {
            "lead_id": lead_id,
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


async def lead_history(conn: AsyncConnection, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(LEAD_AUDIT)
        .where(LEAD_AUDIT.c.lead_id == lead_id)
        .order_by(LEAD_AUDIT.c.at, LEAD_AUDIT.c.id)
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
