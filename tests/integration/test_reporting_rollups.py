"""The fast figures (rollups kept by triggers, partial indexes) equal a full count after a
random workload: forms, newsletter, lead moves, conversions, bulk edits and deletes, deliveries;
before the beat's fold, after it, and in the snapshot it records (issue 14, item 2)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from domain.models import utcnow
from domain.reporting.rollups import lead_tally, new_leads_per_day, rows_per_status
from domain.reporting.snapshots import take_snapshot
from domain.reporting.stats import crm_stats
from infra.db import Database, with_database
from tests.conftest import rows
from tests.integration.admin_support import admin_client

FORM_TYPES = ("contact_us", "quote_request", "partnership_inquiry")
ACTIONS = ["form"] * 4 + ["subscribe", "unsubscribe", "move", "move", "convert", "bulk"]
ACTIONS += ["delete", "deliver", "fold"]
ACTIONS = ["form"] * 4 + ["subscribe", "unsubscribe", "move", "move", "convert", "bulk"]
ACTIONS += ["delete", "deliver", "fold"]
STATUSES = ("NEW", "CONTACTED", "QUALIFIED", "CONVERTED", "REJECTED")


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def workload(rng: random.Random, client, admin, engine, settings, steps: int) -> None:
    """Writes through the API and, for what the API never does in bulk, plain SQL."""
    emails = [f"buyer{i}@firm{i % 3}.io" for i in range(12)]  # repeats: upserts and re-subscribes
    for _ in range(steps):
        action = rng.choice(ACTIONS)
        lead_ids = [r["id"] for r in rows(engine, "SELECT id FROM leads")]
        if action == "form":
            r = client.post(
                "/api/forms/submit",
                json={"formType": rng.choice(FORM_TYPES), "email": rng.choice(emails),
                      "name": "Ada", "companyName": "Firm", "message": "Pallets, please."},
            )  # fmt: skip
            assert r.status_code == 201, r.text
        elif action == "subscribe":
            r = client.post("/api/newsletter-subscribe", json={"email": rng.choice(emails)})
            assert r.status_code in (200, 201), r.text
        elif action == "unsubscribe":
            client.post("/api/newsletter-unsubscribe", json={"email": rng.choice(emails)})
        elif action == "move" and lead_ids:
            admin.patch(
                f"/api/admin/leads/{rng.choice(lead_ids)}",
                json={"status": rng.choice(STATUSES), "leadScore": rng.randint(0, 100)},
            )  # an illegal move answers 409 and changes nothing
        elif action == "convert" and lead_ids:
            admin.post(f"/api/admin/leads/{rng.choice(lead_ids)}/convert")
        elif action == "bulk":
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE leads SET source = %(s)s, lead_score = (lead_score + 7) %% 101, "
                    "type = 'QUOTE_REQUEST', created_at = created_at - interval '3 days' "
                    "WHERE random() < 0.5",
                    {"s": rng.choice(["trade_show", "partner_referral", "web_form"])},
                )
        elif action == "delete" and lead_ids:
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "DELETE FROM leads WHERE id = ANY(%(ids)s)",
                    {"ids": rng.sample(lead_ids, k=min(2, len(lead_ids)))},
                )
                conn.exec_driver_sql("DELETE FROM form_submissions WHERE random() < 0.2")
        elif action == "deliver":
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE crm_notifications SET read = true, read_at = now(), "
                    "status = 'DELIVERED' WHERE read = false AND random() < 0.4"
                )
                conn.exec_driver_sql(
                    "UPDATE crm_notifications SET status = 'FAILED', failed_at = now() "
                    "WHERE read = false AND status = 'PENDING' AND random() < 0.3"
                )
        elif action == "fold":
            with_database(settings, snapshot)


async def snapshot(db: Database) -> None:
    async with db.transaction() as conn:
        await take_snapshot(conn, utcnow())


def full_counts(engine) -> dict:
    """Every figure counted from the rows themselves, the slow way."""
    (leads,) = rows(
        engine,
        "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'CONVERTED') AS converted, "
        "avg(lead_score) AS avg FROM leads",
    )
    by_target: dict = {}
    for r in rows(
        engine,
        "SELECT target_system, count(*) AS unread, count(*) FILTER (WHERE status = 'FAILED') "
        "AS failed FROM crm_notifications WHERE read IS false GROUP BY target_system",
    ):
        by_target[r["target_system"]] = {"unread": r["unread"], "failed": r["failed"]}
    return {
        "leads": {(r["type"], r["status"], r["source"]): (r["n"], r["s"]) for r in rows(
            engine, "SELECT type, status, source, count(*) AS n, sum(lead_score) AS s "
            "FROM leads GROUP BY 1, 2, 3")},
        "days": {r["d"]: r["n"] for r in rows(
            engine, "SELECT (created_at AT TIME ZONE 'UTC')::date AS d, count(*) AS n "
            "FROM leads GROUP BY 1")},
        "forms": {r["status"]: r["n"] for r in rows(
            engine, "SELECT status, count(*) AS n FROM form_submissions GROUP BY 1")},
        "subscribers": {r["status"]: r["n"] for r in rows(
            engine, "SELECT status, count(*) AS n FROM newsletter_subscribers GROUP BY 1")},
        "total": leads["total"],
        "converted": leads["converted"],
        # the product's rounding (Python's, to 2 decimals), from PostgreSQL's exact average
        "avg": round(float(leads["avg"]), 2) if leads["avg"] is not None else None,
        "by_target": by_target,
    }  # fmt: skip


def fast_figures(settings) -> dict:
    async def read(db: Database) -> dict:
        async with db.transaction() as conn:
            tally = await lead_tally(conn)
            stats = await crm_stats(conn)
            return {
                "leads": {(g.type, g.status, g.source): (g.leads, g.score_sum)
                          for g in tally.groups},
                "days": await new_leads_per_day(conn, date(2000, 1, 1)),
                "forms": await rows_per_status(conn, "form_submissions"),
                "subscribers": await rows_per_status(conn, "newsletter_subscribers"),
                "total": stats.total_leads,
                "converted": stats.converted_leads,
                "avg": stats.average_lead_score,
                "by_target": stats.by_target,
            }  # fmt: skip

    return with_database(settings, read)


def rollup_rows(engine) -> int:
    (r,) = rows(
        engine,
        "SELECT (SELECT count(*) FROM crm_lead_rollups) + (SELECT count(*) FROM "
        "crm_lead_day_rollups) + (SELECT count(*) FROM crm_status_rollups) AS n",
    )
    return int(r["n"])


@pytest.mark.parametrize("seed", [14, 2026])
def test_fast_figures_equal_a_full_count_after_a_random_workload(
    seed, client, admin, engine, settings
):
    workload(random.Random(seed), client, admin, engine, settings, steps=60)
    expected = full_counts(engine)
    assert expected["total"] > 0 and expected["forms"]  # the workload wrote something
    assert fast_figures(settings) == expected  # deltas not folded yet

    deltas = rollup_rows(engine)
    with_database(settings, snapshot)
    assert rollup_rows(engine) <= deltas
    assert fast_figures(settings) == expected  # folded
    snap = rows(engine, "SELECT * FROM crm_stats_snapshots ORDER BY id DESC LIMIT 1")[0]
    assert (snap["total_leads"], snap["converted_leads"], snap["average_lead_score"]) == (
        expected["total"], expected["converted"], expected["avg"])  # fmt: skip
    assert snap["total_forms"] == sum(expected["forms"].values())
    assert snap["total_subscribers"] == expected["subscribers"].get("SUBSCRIBED", 0)
    assert snap["by_target"] == expected["by_target"]


def test_the_api_answers_with_the_full_count_and_says_as_of_when(client, admin, engine):
    rng = random.Random(7)
    for i in range(8):
        client.post("/api/forms/submit", json={"formType": rng.choice(FORM_TYPES),
                                               "email": f"p{i}@q.io"})  # fmt: skip
    with engine.begin() as conn:  # leads on other days, and a move
        conn.exec_driver_sql(
            "UPDATE leads SET created_at = created_at - (random() * 20)::int * interval '1 day'"
        )
    before = utcnow()
    counts = admin.get("/api/admin/leads/counts").json()
    body = admin.get("/api/admin/monitoring", params={"days": 30}).json()
    assert before <= datetime.fromisoformat(counts.pop("asOf")) <= utcnow()
    assert before <= datetime.fromisoformat(body["asOf"]) <= utcnow()
    by_type = {r["type"]: r["n"] for r in rows(
        engine, "SELECT type, count(*) AS n FROM leads GROUP BY 1")}  # fmt: skip
    assert counts["total"] == sum(by_type.values())
    assert {k: v for k, v in counts["byType"].items() if v} == by_type
    days = {r["d"].isoformat(): r["n"] for r in rows(
        engine, "SELECT (created_at AT TIME ZONE 'UTC')::date AS d, count(*) AS n FROM leads "
        "WHERE created_at >= :since GROUP BY 1",
        since=datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        - timedelta(days=29))}  # fmt: skip
    assert {d["date"]: d["count"] for d in body["dailyNewLeads"] if d["count"]} == days


def test_truncate_empties_the_rollups(client, engine, settings):
    client.post("/api/forms/submit", json={"formType": "contact_us", "email": "t@r.io"})
    assert rollup_rows(engine) > 0
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE leads, form_submissions, newsletter_subscribers CASCADE")
    assert rollup_rows(engine) == 0
    assert fast_figures(settings)["total"] == 0
