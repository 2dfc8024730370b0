"""Counts without scanning: the rollups kept by PostgreSQL triggers (migration 0012).

Every statement that writes leads, form_submissions or newsletter_subscribers appends signed
delta rows in its own transaction, so the sum over a rollup table is the exact count of what
is committed, at any moment (issue 14: the dashboard read a million rows per view). The beat's
snapshot calls `fold` to collapse the deltas into one row per key, which keeps the tables a few
dozen rows long (the day table: one row per day). On SQLite (a single-process setup with few
rows) there are no triggers: the same functions count the rows themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import LeadStatus
from domain.models import (
    FORM_SUBMISSIONS,
    LEAD_DAY_ROLLUPS,
    LEAD_ROLLUPS,
    LEADS,
    STATUS_ROLLUPS,
    SUBSCRIBERS,
)


def has_rollups(conn: AsyncConnection) -> bool:
    """Only PostgreSQL keeps rollups (the triggers use transition tables)."""
    return conn.dialect.name == "postgresql"


@dataclass(frozen=True, slots=True)
class LeadGroup:
    type: str
    status: str
    source: str
    leads: int
    score_sum: int


@dataclass(frozen=True)
class LeadTally:
    """Leads and score sums per (type, status, source): every lead figure derives from it."""

    groups: tuple[LeadGroup, ...]

    @property
    def total(self) -> int:
        return sum(g.leads for g in self.groups)

    @property
    def score_sum(self) -> int:
        return sum(g.score_sum for g in self.groups)

    def count_by(self, key: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for g in self.groups:
            counts[getattr(g, key)] += g.leads
        return counts

    def in_statuses(self, statuses: Iterable[LeadStatus]) -> int:
        wanted = {str(s) for s in statuses}
        return sum(g.leads for g in self.groups if g.status in wanted)

    def converted_by_source(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for g in self.groups:
            if g.status == LeadStatus.CONVERTED:
                counts[g.source] += g.leads
        return counts


def _tally(rows: Iterable[Any]) -> LeadTally:
    return LeadTally(
        tuple(
            LeadGroup(str(t), str(s), str(src), int(n), int(total or 0))
            for t, s, src, n, total in rows
        )
    )


async def counted_lead_tally(conn: AsyncConnection) -> LeadTally:
    """The tally counted from the leads themselves: SQLite's path, and the rollups' reference."""
    c = LEADS.c
    return _tally(
        await conn.execute(
            select(c.type, c.status, c.source, func.count(), func.sum(c.lead_score)).group_by(
                c.type, c.status, c.source
            )
        )
    )


async def lead_tally(conn: AsyncConnection) -> LeadTally:
    if not has_rollups(conn):
        return await counted_lead_tally(conn)
    r = LEAD_ROLLUPS.c
    n = func.sum(r.leads)
    return _tally(
        await conn.execute(
            select(r.type, r.status, r.source, n, func.sum(r.score_sum))
            .group_by(r.type, r.status, r.source)
            .having(n != 0)
        )
    )


async def new_leads_per_day(conn: AsyncConnection, first: date) -> dict[date, int]:
    """Leads created on each UTC day from `first` on (days without any are left out)."""
    if has_rollups(conn):
        d = LEAD_DAY_ROLLUPS.c
        stmt = select(d.day, func.sum(d.leads)).where(d.day >= first).group_by(d.day)
    else:
        day = func.date(LEADS.c.created_at)
        stmt = select(day, func.count()).where(day >= first.isoformat()).group_by(day)
    rows = await conn.execute(stmt)
    return {(k if isinstance(k, date) else date.fromisoformat(k)): int(n) for k, n in rows if n}


async def rows_per_status(conn: AsyncConnection, table: str) -> dict[str, int]:
    """Rows of form_submissions or newsletter_subscribers per status."""
    if has_rollups(conn):
        s = STATUS_ROLLUPS.c
        n = func.sum(s.row_count)
        stmt = select(s.status, n).where(s.table_name == table).group_by(s.status).having(n != 0)
    else:
        stmt = counted_rows_per_status(table)
    return {str(k): int(v) for k, v in await conn.execute(stmt)}


def counted_rows_per_status(table: str) -> Any:
    t = {"form_submissions": FORM_SUBMISSIONS, "newsletter_subscribers": SUBSCRIBERS}[table]
    return select(t.c.status, func.count()).group_by(t.c.status)


FOLD = (
    # Each statement swaps a table's rows for their sums in one snapshot: deltas committed
    # meanwhile are not deleted and stay as they are, so the total never changes.
    """WITH gone AS (DELETE FROM crm_lead_rollups RETURNING type, status, source, leads, score_sum)
    INSERT INTO crm_lead_rollups (type, status, source, leads, score_sum)
    SELECT type, status, source, sum(leads), sum(score_sum) FROM gone
    GROUP BY type, status, source HAVING sum(leads) <> 0 OR sum(score_sum) <> 0""",
    """WITH gone AS (DELETE FROM crm_lead_day_rollups RETURNING day, leads)
    INSERT INTO crm_lead_day_rollups (day, leads)
    SELECT day, sum(leads) FROM gone GROUP BY day HAVING sum(leads) <> 0""",
    """WITH gone AS (DELETE FROM crm_status_rollups RETURNING table_name, status, row_count)
    INSERT INTO crm_status_rollups (table_name, status, row_count)
    SELECT table_name, status, sum(row_count) FROM gone
    GROUP BY table_name, status HAVING sum(row_count) <> 0""",
)


async def fold(conn: AsyncConnection) -> None:
    """Collapse the delta rows into one row per key (the beat's snapshot, every minute)."""
    if has_rollups(conn):
        for statement in FOLD:
            await conn.execute(text(statement))
