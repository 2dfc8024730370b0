"""The seed's section 12 metrics: daily new leads, status distribution, stale notifications,
the conversion funnel and conversion rate per lead source."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import LeadStatus
from domain.models import utcnow
from domain.outbox.queries import unread_by_target
from domain.reporting.rollups import LeadTally, lead_tally, new_leads_per_day
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
    # When the figures were read (they come from the rollups, exact at that moment).
    as_of: datetime
    daily_new_leads: list[DailyCount]
    status_distribution: list[StatusCount]
    stale_unread_notifications: dict[str, int]
    funnel: list[FunnelStage]
    conversion_by_source: list[SourceConversion]


async def daily_new_leads(
    conn: AsyncConnection, days: int, now: datetime | None = None
) -> list[DailyCount]:
    """New leads per UTC day for the last `days` days, today included; empty days show 0."""
    today = (now or utcnow()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    found = await new_leads_per_day(conn, first)
    return [
        DailyCount(first + timedelta(days=i), found.get(first + timedelta(days=i), 0))
        for i in range(days)
    ]


def status_distribution(tally: LeadTally) -> list[StatusCount]:
    counts = tally.count_by("status")
    ordered = sorted(((n, s) for s, n in counts.items() if n), key=lambda x: (-x[0], x[1]))
    return [StatusCount(LeadStatus(s), n) for n, s in ordered]


async def stale_unread_notifications(
    conn: AsyncConnection, stale_after: timedelta, now: datetime | None = None
) -> dict[str, int]:
    """Unread notifications older than `stale_after` (CRM_STALE_AFTER, the stale alert's own
    threshold), per target system: potential delivery issues."""
    cutoff = (now or utcnow()) - stale_after
    return {u.target_system: u.count for u in await unread_by_target(conn, older_than=cutoff)}


def funnel_of(tally: LeadTally) -> list[FunnelStage]:
    counts = [tally.in_statuses(statuses) for _, statuses in FUNNEL_STAGES]
    total = counts[0]
    return [
        FunnelStage(stage, n, conversion_rate(n, total))
        for (stage, _), n in zip(FUNNEL_STAGES, counts, strict=True)
    ]


async def conversion_funnel(conn: AsyncConnection) -> list[FunnelStage]:
    return funnel_of(await lead_tally(conn))


def conversion_by_source(tally: LeadTally) -> list[SourceConversion]:
    totals = tally.count_by("source")
    converted = tally.converted_by_source()
    ordered = sorted(((t, s) for s, t in totals.items() if t), key=lambda x: (-x[0], x[1]))
    return [
        SourceConversion(s, t, converted[s], conversion_rate(converted[s], t)) for t, s in ordered
    ]


async def monitoring(conn: AsyncConnection, days: int, stale_after: timedelta) -> Monitoring:
    """Every figure from the rollups and the partial indexes: exact as of `as_of`."""
    now = utcnow()
    tally = await lead_tally(conn)
    return Monitoring(
        days=days,
        as_of=now,
        daily_new_leads=await daily_new_leads(conn, days, now),
        status_distribution=status_distribution(tally),
        stale_unread_notifications=await stale_unread_notifications(conn, stale_after, now),
        funnel=funnel_of(tally),
        conversion_by_source=conversion_by_source(tally),
    )
