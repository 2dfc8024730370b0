"""Alert episodes: raised once when a problem starts, once more when it clears."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.models import ALERTS, utcnow
from domain.outbox.queries import unread_by_target

STALE = "stale_notifications"
DEAD_LETTER = "dead_letter"
TARGET_DISABLED = "target_disabled"  # raised by the guardrails (worker/guardrails.py)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: str
    target_system: str
    state: str  # "raised" or "cleared"
    details: dict[str, Any]

    @property
    def text(self) -> str:
        d = self.details
        if self.kind == STALE and self.state == "raised":
            return (
                f":warning: crm-sync: {d['count']} notification(s) to {self.target_system} "
                f"unread for more than {d['staleAfterSeconds']:.0f} s (oldest {d['oldest']})"
            )
        if self.kind == TARGET_DISABLED:
            return (
                f":no_entry: crm-sync: destination {self.target_system} disabled: {d['reason']} "
                f"(last error: {d['lastError']}); its notifications wait until it is enabled again"
            )
        if self.kind == STALE:
            return f":white_check_mark: crm-sync: notifications to {self.target_system} are flowing again"
        return (
            f":x: crm-sync: {d['count']} notification(s) to {self.target_system} dead-lettered "
            f"(last error: {d['lastError']}); replay with `crm notifications replay --failed`"
        )


async def check_stale(
    conn: AsyncConnection, stale_after: timedelta, now: datetime | None = None
) -> list[AlertEvent]:
    """Open an episode per target with unread rows older than `stale_after`; close cleared ones."""
    now = now or utcnow()
    stale = {
        u.target_system: (u.count, u.oldest_created_at)
        for u in await unread_by_target(conn, older_than=now - stale_after)
    }
    open_episodes = {
        target: alert_id
        for alert_id, target in await conn.execute(
            select(ALERTS.c.id, ALERTS.c.target_system)
            .where(ALERTS.c.kind == STALE, ALERTS.c.closed_at.is_(None))
            .with_for_update()
        )
    }
    events = []
    for target, (count, oldest) in sorted(stale.items()):
        if target in open_episodes:
            continue
        details = {
            "count": int(count),
            "oldest": oldest.isoformat() if oldest is not None else None,
            "staleAfterSeconds": stale_after.total_seconds(),
        }
        await conn.execute(
            insert(ALERTS).values(kind=STALE, target_system=target, opened_at=now, details=details)
        )
        events.append(AlertEvent(STALE, target, "raised", details))
    for target, alert_id in sorted(open_episodes.items()):
        if target not in stale:
            await conn.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(closed_at=now))
            events.append(AlertEvent(STALE, target, "cleared", {}))
    return events


async def record_dead_letters(
    conn: AsyncConnection, target: str, ids: list[str], last_error: str
) -> AlertEvent:
    now = utcnow()
    details = {"count": len(ids), "notificationIds": ids, "lastError": last_error}
    await conn.execute(
        insert(ALERTS).values(
            kind=DEAD_LETTER, target_system=target, opened_at=now, closed_at=now, details=details
        )
    )
    return AlertEvent(DEAD_LETTER, target, "raised", details)
