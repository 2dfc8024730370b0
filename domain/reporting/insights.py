"""The overview's lead insights (issue 13, item 5): average lead score, status distribution
and conversion by source, the figures /api/admin/monitoring already computes, for the page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.models import LEADS
from domain.reporting.monitoring import (
    SourceConversion,
    StatusCount,
    conversion_by_source,
    status_distribution,
)


@dataclass(frozen=True, slots=True)
class LeadInsights:
    average_lead_score: float | None  # None without any lead
    status_distribution: list[StatusCount]
    conversion_by_source: list[SourceConversion]

    @property
    def total(self) -> int:
        return sum(s.count for s in self.status_distribution)


async def lead_insights(conn: AsyncConnection) -> LeadInsights:
    average = (await conn.execute(select(func.avg(LEADS.c.lead_score)))).scalar_one()
    return LeadInsights(
        None if average is None else round(float(average), 1),
        await status_distribution(conn),
        await conversion_by_source(conn),
    )
