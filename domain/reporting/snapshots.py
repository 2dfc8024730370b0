"""Periodic CRM stats snapshots (every CRM_STATS_SECONDS): the history behind the dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.models import SNAPSHOTS
from domain.reporting.rollups import fold
from domain.reporting.stats import crm_stats, snapshot_row


async def take_snapshot(conn: AsyncConnection, taken_at: datetime) -> None:
    """Fold the rollups' deltas, then record the current figures, computed by the same
    queries as the dashboard's cards (rollups and indexes: no table scan)."""
    await fold(conn)
    stats = await crm_stats(conn)
    await conn.execute(insert(SNAPSHOTS).values(**snapshot_row(stats, taken_at)))
