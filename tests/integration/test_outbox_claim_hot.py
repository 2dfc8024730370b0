"""The claim's update is HOT (migration 0014): claimed_until and claimed_by are in no index, and
each notifications partition leaves room on its pages, so claiming a row writes no index entry.
"""

from __future__ import annotations

from datetime import timedelta

from domain.outbox.delivery import claim_due
from infra.db import Database, with_database
from tests.conftest import count

ROWS, CLAIMED = 200, 5
# Due rows, oldest first on disk: the claim takes the first ones, on the table's first page,
# which a fillfactor of 100 would leave full (no room for a new version: no HOT update).
INSERT = """
INSERT INTO crm_notifications
    (id, type, target_system, priority, data, read, created_at, status, attempts,
     next_attempt_at)
SELECT gen_random_uuid(), 'NEW_LEAD', 'BZION_HUB', 'HIGH',
       jsonb_build_object('leadId', gen_random_uuid()), false,
       now() - (:n - g) * interval '1 second', 'PENDING', 0, now() - interval '1 second'
FROM generate_series(1, :n) AS g
"""
# This transaction's own counts (pg_stat_get_xact_*): exact, not the lagging cumulative view.
UPDATES = """
SELECT sum(pg_stat_get_xact_tuples_updated(relid)), sum(pg_stat_get_xact_tuples_hot_updated(relid))
FROM pg_partition_tree('crm_notifications') WHERE isleaf
"""


def test_a_claim_updates_its_rows_in_place_without_index_entries(engine, settings):
    with engine.begin() as conn:
        conn.exec_driver_sql(INSERT.replace(":n", str(ROWS)))
    assert count(engine, "crm_notifications") == ROWS

    async def claim(db: Database) -> tuple[int, tuple[int, int]]:
        async with db.engine.connect() as conn:
            claimed = await claim_due(conn, "w-1", ["BZION_HUB"], CLAIMED, timedelta(seconds=60))
            updated, hot = (await conn.exec_driver_sql(UPDATES)).one()
            await conn.rollback()
        return len(claimed), (int(updated), int(hot))

    claimed, (updated, hot) = with_database(settings, claim)

    assert claimed == CLAIMED
    assert (updated, hot) == (CLAIMED, CLAIMED)
