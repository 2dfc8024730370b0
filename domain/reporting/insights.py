"""The overview's lead insights (issue 13, item 5): average lead score, status distribution
and conversion by source, the figures /api/admin/monitoring already computes, for the page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.reporting.monitoring import (
    SourceConversion,
    StatusCount,
    conversion_by_source,
    status_distribution,
)
from domain.reporting.rollups import lead_tally


@dataclass(frozen=True, slots=True)
class LeadInsights:
    average_lead_score: float | None  # None without any lead
    status_distribution: list[StatusCount]
    conversion_by_source: list[SourceConversion]

    @property
    def total(self) -> int:
        return sum(s.count for s in self.status_distribution)


async def lead_insights(conn: AsyncConnection) -> LeadInsights:
    """From the rollups (no scan of the leads at any size), as monitoring reads them."""
    tally = await lead_tally(conn)
    average = tally.score_sum / tally.total if tally.total else None
    return LeadInsights(
        None if average is None else round(float(average), 1),
        status_distribution(tally),
        conversion_by_source(tally),
    )
