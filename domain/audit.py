"""Audit trails: who changed which field of a row, when, from which value to which.

Leads and customers keep one each (`lead_audit_entries`, `customer_audit`), same shape: one
`AuditTrail` per table, so the rule "one entry per field that really changed" lives here once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection


def as_text(value: object) -> str | None:
    """A stored value: enums by value, JSON-ish values as sorted JSON, the rest as text."""
    if value is None:
        return None
    if isinstance(value, dict | list | bool | int | float):
        return json.dumps(value, sort_keys=True, default=str)
    return str(getattr(value, "value", value))


@dataclass(frozen=True)
class AuditTrail:
    table: Table
    owner: str  # the column naming the row the entries are about: lead_id, customer_id
    max_value_length: int | None = None  # lead entries keep VARCHAR(254) values

    def _text(self, value: object) -> str | None:
        text = as_text(value)
        return (
            text if text is None or self.max_value_length is None else text[: self.max_value_length]
        )

    def rows(
        self,
        owner_id: uuid.UUID,
        actor: str,
        at: datetime,
        action: str,
        changes: Mapping[str, tuple[object, object]],
    ) -> list[dict[str, Any]]:
        """One entry per field whose value really changed."""
        return [
            {
                self.owner: owner_id,
                "actor": actor,
                "at": at,
                "action": action,
                "field": field,
                "from_value": self._text(before),
                "to_value": self._text(after),
            }
            for field, (before, after) in changes.items()
            if self._text(before) != self._text(after)
        ]

    async def history(self, conn: AsyncConnection, owner_id: uuid.UUID) -> list[dict[str, Any]]:
        t = self.table
        rows = await conn.execute(
            select(t).where(t.c[self.owner] == owner_id).order_by(t.c.at, t.c.id)
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
