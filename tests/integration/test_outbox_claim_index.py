"""The dispatcher's claim finds "nothing due" by an index probe, not by walking the backlog.

Rows waiting in backoff are pending and unread, so the priority-ordered index
(idx_crm_notifications_due) holds every one of them; the claim's own statement must be served
by idx_crm_notifications_claim (target, next_attempt_at), which skips them (issue 14, item 4).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, text

from domain.outbox.delivery import claim_due
from infra.db import Database, with_database

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


def index_names(plan: dict[str, Any]) -> set[str]:
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= index_names(child)
    return found


def test_claim_with_rows_in_backoff_uses_the_claim_index_and_finds_nothing(engine, settings):
    with engine.begin() as conn:
        # BZION_HUB is down: all its rows wait in backoff. Another target has due rows, which
        # the BZION_HUB claim must not walk either.
        conn.execute(text(INSERT), {"target": "BZION_HUB", "n": BACKOFF, "wait_s": 600,
                                    "error": "HTTP 503"})  # fmt: skip
        conn.execute(text(INSERT), {"target": "OTHER", "n": 500, "wait_s": -600, "error": None})
        conn.execute(text("ANALYZE crm_notifications"))

    async def claim_and_explain(db: Database) -> tuple[list[Any], dict[str, Any]]:
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
            explained = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params)
            plan = explained.scalar_one()[0]["Plan"]
        return claimed, plan

    claimed, plan = with_database(settings, claim_and_explain)

    assert claimed == []
    used = index_names(plan)
    assert "idx_crm_notifications_claim" in used, used
    assert "idx_crm_notifications_due" not in used, used
