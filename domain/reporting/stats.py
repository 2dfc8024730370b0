"""CRM figures: the dashboard's stat cards and the periodic snapshots share these queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import LeadStatus, NotificationStatus, SubscriberStatus
from domain.models import NOTIFICATIONS
from domain.outbox.queries import is_unread, status_is, unread_by_target
from domain.reporting.rollups import lead_tally, rows_per_status


def conversion_rate(converted: int, total: int) -> float:
    """Converted / total leads, in percent with 2 decimals (the seed's definition)."""
    return round(100.0 * converted / total, 2) if total else 0.0


@dataclass(frozen=True)
class CrmStats:
    total_leads: int
    converted_leads: int
    average_lead_score: float | None
    total_forms: int
    total_subscribers: int
    unread_notifications: int
    failed_notifications: int
    by_target: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def conversion_rate(self) -> float:
        return conversion_rate(self.converted_leads, self.total_leads)


async def failed_by_target(conn: AsyncConnection) -> dict[str, int]:
    """Dead-lettered notifications per target: an index-only count on
    idx_crm_notifications_failed (it includes target_system and read)."""
    n = NOTIFICATIONS.c
    rows = await conn.execute(
        select(n.target_system, func.count())
        .where(status_is(NotificationStatus.FAILED), is_unread())
        .group_by(n.target_system)
    )
    return {target: int(count) for target, count in rows}


async def crm_stats(conn: AsyncConnection) -> CrmStats:
    """The figures of the stat cards, without scanning a table: lead, form and subscriber
    counts from the rollups (domain/reporting/rollups.py), notifications from the partial
    indexes. Exact as of the reading transaction."""
    tally = await lead_tally(conn)
    forms = await rows_per_status(conn, "form_submissions")
    subscribers = await rows_per_status(conn, "newsletter_subscribers")
    failed = await failed_by_target(conn)
    by_target: dict[str, dict[str, int]] = {
        u.target_system: {"unread": u.count, "failed": failed.get(u.target_system, 0)}
        for u in await unread_by_target(conn)
    }
    total = tally.total
    return CrmStats(
        total_leads=total,
        converted_leads=tally.in_statuses([LeadStatus.CONVERTED]),
        average_lead_score=round(tally.score_sum / total, 2) if total else None,
        total_forms=sum(forms.values()),
        total_subscribers=subscribers.get(SubscriberStatus.SUBSCRIBED.value, 0),
        unread_notifications=sum(v["unread"] for v in by_target.values()),
        failed_notifications=sum(v["failed"] for v in by_target.values()),
        by_target=by_target,
    )


def snapshot_row(stats: CrmStats, taken_at: Any) -> dict[str, Any]:
    return {
        "taken_at": taken_at,
        "total_leads": stats.total_leads,
        "total_forms": stats.total_forms,
        "total_subscribers": stats.total_subscribers,
        "converted_leads": stats.converted_leads,
        "conversion_rate": stats.conversion_rate,
        "average_lead_score": stats.average_lead_score,
        "unread_notifications": stats.unread_notifications,
        "failed_notifications": stats.failed_notifications,
        "by_target": stats.by_target,
    }
