"""The dispatcher's claim finds "nothing due" by an index probe, not by walking the backlog.

Rows waiting in backoff are pending and unread, so the priority-ordered index
(idx_crm_notifications_due) holds every one of them, and the planner, which sees most rows'
next_attempt_at in the past (delivered rows keep theirs), expects due rows among them. The
claim's own statement must decide on idx_crm_notifications_claim (target, next_attempt_at)
and never walk the backlog (issue 14, item 4).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, text

from domain.outbox.delivery import claim_due
from infra.db import Database, with_database
from tests.integration.plan_support import declared_names

BACKOFF = 5_000
INSERT = """
INSERT INTO crm_notifications
    (id, type, target_system, priority, data, read, created_at, status, attempts,
     next_attempt_at, last_error)
SELECT gen_random_uuid(), 'NEW_LEAD', :target, (ARRAY['HIGH', 'NORMAL', 'LOW'])[1 + g % 3],
       jsonb_build_object('leadId', gen_random_uuid()), false,
       now() - g * interval '1 second', 'PENDING', 1 + g % 5,
       now() + :wait_s * interval '1 second' + g * interval '1 millisecond', :error
FROM generate_series(1, :n) AS g
"""
DELIVERED = """
INSERT INTO crm_notifications
    (id, type, target_system, priority, data, read, read_at, created_at, status, attempts,
     next_attempt_at)
SELECT gen_random_uuid(), 'NEW_LEAD', (ARRAY['BZION_HUB', 'OTHER'])[1 + g % 2], 'NORMAL',
       '{}', true, now() - g * interval '1 minute', now() - g * interval '1 minute', 'DELIVERED',
       1, now() - g * interval '1 minute'
FROM generate_series(1, 20000) AS g
"""


def executed_scans(plan: dict[str, Any]) -> set[str]:
    """Index (or Seq Scan) nodes of an EXPLAIN ANALYZE plan that actually ran."""
    found = set()
    if (
        plan["Node Type"].endswith(
            ("Index Scan", "Index Only Scan", "Seq Scan", "Bitmap Heap Scan")
        )
        and plan.get("Actual Loops", 0) > 0
    ):
        found.add(plan.get("Index Name", plan["Node Type"]))
    for child in plan.get("Plans", []):
        found |= executed_scans(child)
    return found


def test_claim_with_rows_in_backoff_probes_the_claim_index_and_walks_nothing(engine, settings):
    with engine.begin() as conn:
        # BZION_HUB is down: all its pending rows wait in backoff. Delivered rows of the past,
        # and due rows of another target, which the BZION_HUB claim must not walk either.
        conn.execute(text(INSERT), {"target": "BZION_HUB", "n": BACKOFF, "wait_s": 600,
                                    "error": "HTTP 503"})  # fmt: skip
        conn.execute(text(INSERT), {"target": "OTHER", "n": 500, "wait_s": -600, "error": None})
        conn.execute(text(DELIVERED))
        conn.execute(text("ANALYZE crm_notifications"))

    async def claim_and_explain(db: Database) -> tuple[list[Any], set[str]]:
        sent: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            sent.append((statement, params))

        event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
        async with db.engine.connect() as conn:
            claimed = await claim_due(conn, "w-1", ["BZION_HUB"], 200, timedelta(seconds=60))
            await conn.rollback()
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
        (statement, params), *_ = [s for s in sent if "UPDATE crm_notifications" in s[0]]
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            explained = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params
            )
            plan = explained.scalar_one()[0]["Plan"]
            names = await declared_names(conn, executed_scans(plan))  # a partition's index: its own
            await conn.rollback()
        return claimed, {names.get(n, n) for n in executed_scans(plan)}

    claimed, ran = with_database(settings, claim_and_explain)

    assert claimed == []
    assert "idx_crm_notifications_claim" in ran, ran
    assert ran <= {"idx_crm_notifications_claim"}, ran
