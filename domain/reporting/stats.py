"""CRM figures: the dashboard's stat cards and the periodic snapshots share these queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import LeadStatus, NotificationStatus, SubscriberStatus
from domain.models import FORM_SUBMISSIONS, LEADS, NOTIFICATIONS, SUBSCRIBERS
from domain.outbox.queries import is_unread, unread_by_target


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


async def crm_stats(conn: AsyncConnection) -> CrmStats:
    leads = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((LEADS.c.status == LeadStatus.CONVERTED, 1), else_=0)), 0
                ),
                func.avg(LEADS.c.lead_score),
            )
        )
    ).one()
    forms = (await conn.execute(select(func.count()).select_from(FORM_SUBMISSIONS))).scalar_one()
    subscribers = (
        await conn.execute(
            select(func.count()).where(SUBSCRIBERS.c.status == SubscriberStatus.SUBSCRIBED)
        )
    ).scalar_one()
    # Dead-lettered rows are never read, so the unread index finds them too.
    failed = {
        target: int(n)
        for target, n in await conn.execute(
            select(NOTIFICATIONS.c.target_system, func.count())
            .where(is_unread(), NOTIFICATIONS.c.status == NotificationStatus.FAILED)
            .group_by(NOTIFICATIONS.c.target_system)
        )
    }
    by_target: dict[str, dict[str, int]] = {
        u.target_system: {"unread": u.count, "failed": failed.get(u.target_system, 0)}
        for u in await unread_by_target(conn)
    }
    return CrmStats(
        total_leads=int(leads[0]),
        converted_leads=int(leads[1]),
        average_lead_score=round(float(leads[2]), 2) if leads[2] is not None else None,
        total_forms=int(forms),
        total_subscribers=int(subscribers),
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
