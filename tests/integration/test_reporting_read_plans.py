"""The admin reads' own statements are served by indexes, never by scanning a big table
(issue 14, item 2). Each product function runs against real PostgreSQL with every statement it
sends captured; each is then EXPLAINed as sent (with `enable_seqscan = off` so the plan does
not depend on how few rows a test has: a statement no index can serve still scans)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.enums import NotificationStatus
from domain.leads.queries import LeadFilters, LeadSort, lead_counts, list_leads
from domain.models import utcnow
from domain.outbox.alerts import check_stale
from domain.reporting.monitoring import monitoring
from domain.reporting.overview import (
    CrmSyncCursors,
    NotificationFilters,
    crm_sync,
    list_notifications,
)
from domain.reporting.snapshots import take_snapshot
from infra.db import Database, with_database
from tests.integration.plan_support import declared_names, empty_partitions

BIG = ("leads", "form_submissions", "newsletter_subscribers", "crm_notifications")
SEED = """
INSERT INTO leads (id, email, type, source, status, lead_score, created_at, updated_at)
SELECT gen_random_uuid(), 'l' || g || '@x.io', 'LEAD',
       CASE WHEN mod(g, 100) = 0 THEN 'partner_referral' ELSE 'web_form' END,
       (ARRAY['NEW', 'CONTACTED', 'CONVERTED'])[1 + mod(g, 3)], mod(g, 100),
       now() - g * interval '1 hour', now()
FROM generate_series(1, 2000) g;
INSERT INTO form_submissions (id, form_type, data, status)
SELECT gen_random_uuid(), 'contact_us', '{}', 'NEW' FROM generate_series(1, 500) g;
INSERT INTO newsletter_subscribers (id, email, source, status)
SELECT gen_random_uuid(), 'n' || g || '@x.io', 'B2B_PLATFORM', 'SUBSCRIBED'
FROM generate_series(1, 300) g;
INSERT INTO crm_notifications (id, type, target_system, priority, data, read, created_at, status)
SELECT gen_random_uuid(), 'NEW_LEAD', (ARRAY['BZION_HUB', 'SALESFORCE'])[1 + mod(g, 2)], 'NORMAL',
       '{}', mod(g, 10) <> 0, now() - g * interval '1 minute',
       CASE WHEN mod(g, 10) <> 0 THEN 'DELIVERED' WHEN mod(g, 20) = 0 THEN 'FAILED' ELSE 'PENDING' END
FROM generate_series(1, 5000) g;
"""


def scans(plan: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(node type, relation, index) of every scan node in a plan."""
    found = set()
    if "Relation Name" in plan or "Index Name" in plan:  # a bitmap's index names no table
        found.add((plan["Node Type"], plan.get("Relation Name", ""), plan.get("Index Name", "")))
    for child in plan.get("Plans", []):
        found |= scans(child)
    return found


def plans_of(settings, work: Callable[[AsyncConnection], Awaitable[Any]]) -> set[tuple]:
    """Run `work` (rolled back), then EXPLAIN every SELECT it sent, as it was sent."""

    async def run(db: Database) -> set[tuple]:
        sent: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                sent.append((statement, params))

        event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
        try:
            async with db.engine.connect() as conn:
                await work(conn)
                await conn.rollback()
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
        assert sent, "the function sent no statement"
        found: set[tuple] = set()
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            for statement, params in sent:
                plan = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params)
                found |= scans(plan.scalar_one()[0]["Plan"])
            # a partition's scan counts as its table's, a partition's index as the declared one
            # (an empty partition's scan reads nothing, whatever its node: left out)
            names = await declared_names(conn, [n for s in found for n in s[1:]])
            empty = await empty_partitions(conn, [s[1] for s in found])
            found = {
                (node, names[table], names[index])
                for node, table, index in found
                if table not in empty
            }
            await conn.rollback()
        return found

    return with_database(settings, run)


@pytest.fixture
def seeded(engine):
    with engine.begin() as conn:
        conn.exec_driver_sql(SEED)
    # as autovacuum soon would: the visibility map lets counts read the index alone
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE " + ", ".join(BIG))


def big_table_scans(found: set[tuple]) -> set[tuple]:
    """Scans of a big table other than an index-only one (which reads no table row)."""
    return {s for s in found if s[1] in BIG and s[0] != "Index Only Scan"}


STALE = timedelta(minutes=15)
FIGURES = {
    "crm-sync (stat cards and lists)": lambda c: crm_sync(c, 20, CrmSyncCursors()),
    "monitoring, 365 days": lambda c: monitoring(c, 365, STALE),
    "lead counts": lead_counts,
    "beat: snapshot": lambda c: take_snapshot(c, utcnow()),
    "beat: stale check": lambda c: check_stale(c, STALE),
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_scan_no_big_table(name, seeded, settings):
    found = plans_of(settings, FIGURES[name])
    # the lists of crm-sync read pages by their keyset indexes: never a Seq Scan
    if name.startswith("crm-sync"):
        assert not {s for s in found if s[0] == "Seq Scan" and s[1] in BIG}, found
        assert {s for s in big_table_scans(found) if "keyset" not in s[2]} == set(), found
    else:
        assert big_table_scans(found) == set(), found


def test_notification_counts_are_index_only(seeded, settings):
    found = plans_of(settings, lambda c: take_snapshot(c, utcnow()))
    notes = {(s[0], s[2]) for s in found if s[1] == "crm_notifications"}
    assert notes == {
        ("Index Only Scan", "idx_crm_notifications_unread"),
        ("Index Only Scan", "idx_crm_notifications_failed"),
    }, notes


@pytest.mark.parametrize(
    ("status", "index"),
    [
        (NotificationStatus.FAILED, "idx_crm_notifications_failed"),
        (NotificationStatus.PENDING, "idx_crm_notifications_pending"),
    ],
)
def test_notifications_by_status_read_their_partial_index(status, index, seeded, settings):
    found = plans_of(
        settings, lambda c: list_notifications(c, 20, None, NotificationFilters(status=status))
    )
    assert {(s[1], s[2]) for s in found} == {("crm_notifications", index)}, found


def test_leads_of_one_source_read_the_source_index(seeded, settings):
    found = plans_of(
        settings,
        lambda c: list_leads(c, LeadFilters(source="partner_referral"), LeadSort.SCORE, 20),
    )
    assert {s[2] for s in found} - {""} == {"idx_leads_source_keyset_score"}, found
    assert not {s for s in found if s[0] == "Seq Scan"}, found
