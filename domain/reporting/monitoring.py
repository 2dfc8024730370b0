"""The seed's section 12 metrics: daily new leads, status distribution, stale notifications,
the conversion funnel and conversion rate per lead source."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import LeadStatus
from domain.models import LEADS, utcnow
from domain.outbox.queries import unread_by_target
from domain.reporting.stats import conversion_rate
from domain.rules import FUNNEL_STAGES


class DailyCount(msgspec.Struct, rename="camel"):
    date: date
    count: int


class StatusCount(msgspec.Struct, rename="camel"):
    status: LeadStatus
    count: int


class FunnelStage(msgspec.Struct, rename="camel"):
    stage: str
    count: int
    percent_of_total: float


class SourceConversion(msgspec.Struct, rename="camel"):
    source: str
    total: int
    converted: int
    conversion_rate: float


class Monitoring(msgspec.Struct, rename="camel"):
    days: int
    daily_new_leads: list[DailyCount]
    status_distribution: list[StatusCount]
    stale_unread_notifications: dict[str, int]
    funnel: list[FunnelStage]
    conversion_by_source: list[SourceConversion]


def _utc_day(conn: AsyncConnection, column: Any) -> Any:
    """The UTC calendar day of a timestamp, whatever the session time zone."""
    if conn.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


async def daily_new_leads(
    conn: AsyncConnection, days: int, now: datetime | None = None
) -> list[DailyCount]:
    """New leads per UTC day for the last `days` days, today included; empty days show 0."""
    today = (now or utcnow()).date()
    first = today - timedelta(days=days - 1)
    day = _utc_day(conn, LEADS.c.created_at)
    since = datetime(first.year, first.month, first.day, tzinfo=(now or utcnow()).tzinfo)
    rows = await conn.execute(
        select(day.label("day"), func.count()).where(LEADS.c.created_at >= since).group_by(day)
    )
    found = {(d if isinstance(d, date) else date.fromisoformat(d)): n for d, n in rows}
    return [
        DailyCount(first + timedelta(days=i), found.get(first + timedelta(days=i), 0))
        for i in range(days)
    ]


async def status_distribution(conn: AsyncConnection) -> list[StatusCount]:
    rows = await conn.execute(
        select(LEADS.c.status, func.count().label("n"))
        .group_by(LEADS.c.status)
        .order_by(func.count().desc(), LEADS.c.status)
    )
    return [StatusCount(LeadStatus(s), n) for s, n in rows]


async def stale_unread_notifications(
    conn: AsyncConnection, stale_after: timedelta, now: datetime | None = None
) -> dict[str, int]:
    """Unread notifications older than `stale_after` (CRM_STALE_AFTER, the stale alert's own
    threshold), per target system: potential delivery issues."""
    cutoff = (now or utcnow()) - stale_after
    return {u.target_system: u.count for u in await unread_by_target(conn, older_than=cutoff)}


async def conversion_funnel(conn: AsyncConnection) -> list[FunnelStage]:
    counts = (
        await conn.execute(
            select(
                *(
                    func.coalesce(
                        func.sum(case((LEADS.c.status.in_(list(statuses)), 1), else_=0)), 0
                    )
                    for _, statuses in FUNNEL_STAGES
                )
            )
        )
    ).one()
    total = int(counts[0])
    return [
        FunnelStage(stage, int(n), conversion_rate(int(n), total))
        for (stage, _), n in zip(FUNNEL_STAGES, counts, strict=True)
    ]


async def conversion_by_source(conn: AsyncConnection) -> list[SourceConversion]:
    converted = func.coalesce(
        func.sum(case((LEADS.c.status == LeadStatus.CONVERTED, 1), else_=0)), 0
    )
    rows = await conn.execute(
        select(LEADS.c.source, func.count(), converted)
        .group_by(LEADS.c.source)
        .order_by(func.count().desc(), LEADS.c.source)
    )
    return [
        SourceConversion(s, int(t), int(c), conversion_rate(int(c), int(t))) for s, t, c in rows
    ]


async def monitoring(conn: AsyncConnection, days: int, stale_after: timedelta) -> Monitoring:
    now = utcnow()
    return Monitoring(
        days=days,
        daily_new_leads=await daily_new_leads(conn, days, now),
        status_distribution=await status_distribution(conn),
        stale_unread_notifications=await stale_unread_notifications(conn, stale_after, now),
        funnel=await conversion_funnel(conn),
        conversion_by_source=await conversion_by_source(conn),
    )
