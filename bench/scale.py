"""Admin and pull reads, beat tasks, the claim and retention at a million rows.

In one run, on loopback (PostgreSQL 127.0.0.1:5432 with trust auth; Redis for the API's
sessions, optional):

1. creates its own database `crm_bench_scale_<random>`, migrates it (`infra.migrate.upgrade`);
2. loads issue 14's data set with set-based SQL (generate_series, one statement per table):
   1,000,000 leads (types, statuses, sources incl. a rare one, ~20 % repeated emails, over
   400 days), 1,000,000 form submissions, 200,000 newsletter subscribers, 2,000,000
   notifications over 60 days (mostly delivered and read; 100,000 of BZION_HUB pending in
   backoff, none due; failed ones; unread ones of a pull-mode target) with ~3,000,000 delivery
   attempts; then VACUUM ANALYZE (as autovacuum soon would). `--quick`: 1/10 of every size;
3. makes an admin (`domain.accounts.users.create_admin`), starts `crm api` (subprocess, one
   uvicorn worker, rate limit off) with two push targets and one pull target (API key), signs in;
4. times each read 20 times after one warm-up call (median and p95): the dashboard page per tab,
   `GET /api/admin/monitoring?days=7|90|365`, `GET /api/admin/crm-sync`, pull mode
   `GET /api/v1/crm-notifications?targetSystem=PARTNER_PORTAL&read=false`,
   `GET /api/admin/leads/counts`, notifications `?status=FAILED`, leads `?source=<rare>`, and 20
   successive pages of the leads list (by cursor). Target: p95 < 100 ms. The floor of every HTTP
   read is `GET /health/live` on the same server; of every SQL statement, `SELECT 1`;
5. stops the API and calls the beat tasks' domain functions directly, 3 times each: the stats
   snapshot (`domain.reporting.snapshots.take_snapshot`) and the stale check
   (`domain.outbox.alerts.check_stale`);
6. the dispatcher's claim (`domain.outbox.delivery.claim_due`, the product's own statement, 20
   calls on one connection as a dispatcher makes them) for BZION_HUB, whose rows all wait in
   backoff: first with the claim index dropped (`idx_crm_notifications_claim`, migration
   0005), then with it rebuilt. Target: < 5 ms;
7. last, because it deletes: retention with `--retention-days` (7). The outbox tables are
   partitioned by week (migration 0013; the partitions of the 60 days loaded are made before
   loading, as the hourly beat would have). First a lookup by id only (`get_notification`, as
   the admin detail, replay and pull ack do: it probes every partition's primary key), 20
   calls, next to the same probe on the hot partition alone (a plain table's cost); then the
   pre-partitioning DELETE path (`delete_expired_rows`) on a copy of the database (CREATE
   DATABASE ... TEMPLATE) followed by the VACUUM autovacuum would run; then the product's run
   (`domain.outbox.retention.purge_expired`: drops whole partitions, copying the rows it keeps
   into the DEFAULT one), once, with the time its lock is held, the size of both outbox tables
   before and after (`pg_total_relation_size` over the partitions) and the rows kept;
8. prints the table, writes it to `--json FILE` if asked, drops the database (`--keep-db` keeps it).

    uv run python bench/scale.py            # full size: loading takes a few minutes
    uv run python bench/scale.py --quick    # 1/10 of the rows
    uv run python bench/scale.py --quick --only-retention   # load, then retention (7) only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from string import Template
from typing import Any

import httpx
import psycopg
from sqlalchemy import event, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.forms_submit import (  # noqa: E402
    crm_executable,
    db_url,
    free_port,
    log,
    percentile,
    start_api,
    stop_api,
)
from domain.accounts.users import create_admin  # noqa: E402
from domain.models import utcnow  # noqa: E402
from domain.outbox.alerts import check_stale  # noqa: E402
from domain.outbox.delivery import claim_due  # noqa: E402
from domain.outbox.partitions import AHEAD, ensure_partitions, partitions_of  # noqa: E402
from domain.outbox.retention import delete_expired_rows, purge_expired  # noqa: E402
from domain.reporting.overview import get_notification  # noqa: E402
from domain.reporting.snapshots import take_snapshot  # noqa: E402
from infra.db import Database  # noqa: E402
from infra.migrate import upgrade  # noqa: E402
from infra.settings import Settings  # noqa: E402

ADMIN_URL = os.environ.get("CRM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TARGET_READ_MS = 100.0
TARGET_CLAIM_MS = 5.0
CALLS = 20
ADMIN_EMAIL, ADMIN_PASSWORD = "bench@crm.example", "bench-admin-password"
PULL_KEY = "bench-partner-portal-key"
PUSH_TARGET, OTHER_PUSH, PULL_TARGET = "BZION_HUB", "SALESFORCE", "PARTNER_PORTAL"
RARE_SOURCE = "partner_referral"
CLAIM_INDEX = "idx_crm_notifications_claim"
OUTBOX_TABLES = ("crm_notifications", "crm_notification_attempts")


@dataclass(frozen=True)
class Sizes:
    leads: int
    forms: int
    subscribers: int
    notifications: int
    attempts: int
    backoff: int  # BZION_HUB rows pending in backoff, none due
    unread_pull: int  # PARTNER_PORTAL rows not yet pulled
    failed: int

    @classmethod
    def scaled(cls, factor: float) -> Sizes:
        def n(x: int) -> int:
            return max(1, round(x * factor))

        return cls(n(1_000_000), n(1_000_000), n(200_000), n(2_000_000), n(3_000_000),
                   n(100_000), n(30_000), n(40_000))  # fmt: skip


@dataclass
class Timing:
    name: str
    calls: int
    median_ms: float
    p95_ms: float
    max_ms: float
    target_ms: float | None
    floor: str
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls, name: str, secs: list[float], target_ms: float | None, floor: str, **notes: Any
    ) -> Timing:
        ms = sorted(s * 1000 for s in secs)
        return cls(name, len(ms), statistics.median(ms), percentile(ms, 95), ms[-1],
                   target_ms, floor, notes)  # fmt: skip

    @property
    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        return "met" if self.p95_ms < self.target_ms else "MISSED"


# --------------------------------------------------------------------------- the data set
# Every mix is a function of the row number g (hashed by multiplying with a prime), so a run
# loads the same distribution each time; ages are spread the same way.

LEADS = """
INSERT INTO leads (id, email, name, company_name, phone, type, source, status, lead_score,
                   assigned_to, metadata, converted_at, created_at, updated_at)
SELECT gen_random_uuid(),
       'buyer' || e || '@company' || (e % 997) || '.com',
       'Buyer ' || e, 'Company ' || (e % 20011), '+44 20 7946 ' || lpad((e % 10000)::text, 4, '0'),
       (ARRAY['LEAD', 'CONTACT_REQUEST', 'QUOTE_REQUEST'])[t],
       CASE WHEN g % 1000 = 7 THEN 'partner_referral'
            WHEN (g * 31) % 20 < 12 THEN 'web_form'
            WHEN (g * 31) % 20 < 16 THEN 'newsletter_signup'
            WHEN (g * 31) % 20 < 19 THEN 'manual_import'
            ELSE 'trade_show' END,
       st,
       greatest(0, least(100, (ARRAY[60, 50, 80])[t] + (g * 13) % 21 - 10)),
       CASE WHEN st <> 'NEW' THEN 'sales' || (g % 12) || '@crm.example' END,
       jsonb_build_object('utmSource', (ARRAY['google', 'linkedin', 'newsletter', 'direct'])[1 + g % 4]),
       CASE WHEN st = 'CONVERTED' THEN created + interval '5 days' END,
       created, created
FROM (
    SELECT g,
           -- one lead in five reuses an earlier address: ~20 % repeated emails
           CASE WHEN g % 5 = 0 THEN 1 + (g::bigint * 7919) % ${n} ELSE g END AS e,
           CASE WHEN g % 10 < 5 THEN 1 WHEN g % 10 < 8 THEN 2 ELSE 3 END AS t,
           CASE WHEN (g * 17) % 100 < 55 THEN 'NEW' WHEN (g * 17) % 100 < 75 THEN 'CONTACTED'
                WHEN (g * 17) % 100 < 85 THEN 'QUALIFIED' WHEN (g * 17) % 100 < 93 THEN 'CONVERTED'
                ELSE 'REJECTED' END AS st,
           now() - ((g::bigint * 7927) % (400 * 86400)) * interval '1 second' AS created
    FROM generate_series(1, ${n}) AS g
) s
"""

FORMS = """
INSERT INTO form_submissions (id, form_type, data, ip_address, user_agent, status, created_at)
SELECT gen_random_uuid(),
       (ARRAY['contact_us', 'quote_request', 'partnership_inquiry'])[
           CASE WHEN g % 10 < 5 THEN 1 WHEN g % 10 < 9 THEN 2 ELSE 3 END],
       jsonb_build_object('email', 'buyer' || g || '@company' || (g % 997) || '.com',
                          'name', 'Buyer ' || g, 'companyName', 'Company ' || (g % 20011),
                          'phone', '+44 20 7946 ' || lpad((g % 10000)::text, 4, '0'),
                          'message', 'Please quote ' || (g % 50 + 1) || ' pallets of item '
                                     || (g % 877) || ', delivery to our Leeds warehouse.'),
       '10.' || (g % 256) || '.' || ((g / 256) % 256) || '.' || (g % 251),
       'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0',
       CASE WHEN (g * 7) % 100 < 80 THEN 'NEW' WHEN (g * 7) % 100 < 98 THEN 'PROCESSED'
            ELSE 'SPAM' END,
       now() - ((g::bigint * 7927) % (400 * 86400)) * interval '1 second'
FROM generate_series(1, ${n}) AS g
"""

SUBSCRIBERS = """
INSERT INTO newsletter_subscribers (id, email, source, status, subscribed_at, unsubscribed_at,
                                    metadata)
SELECT gen_random_uuid(), 'reader' || g || '@mail' || (g % 311) || '.com', 'B2B_PLATFORM',
       CASE WHEN g % 10 = 0 THEN 'UNSUBSCRIBED' ELSE 'SUBSCRIBED' END, subscribed,
       CASE WHEN g % 10 = 0 THEN subscribed + interval '30 days' END,
       jsonb_build_object('subscribedFrom', 'website')
FROM (SELECT g, now() - ((g::bigint * 7927) % (400 * 86400)) * interval '1 second' AS subscribed
      FROM generate_series(1, ${n}) AS g) s
"""

# Row g's category: 1..backoff BZION_HUB in backoff (recent), then unread pull rows of
# PARTNER_PORTAL (last 3 days), then failed rows, then delivered ones (over 60 days).
NOTIFICATIONS = """
INSERT INTO crm_notifications
    (id, type, target_system, priority, data, read, read_at, created_at, request_id, status,
     attempts, next_attempt_at, last_error, failed_at)
SELECT gen_random_uuid(),
       (ARRAY['NEW_FORM_SUBMISSION', 'NEW_FORM_SUBMISSION', 'NEW_FORM_SUBMISSION',
              'NEW_FORM_SUBMISSION', 'NEW_LEAD', 'NEW_LEAD', 'NEW_LEAD', 'QUOTE_REQUEST',
              'NEWSLETTER_SIGNUP', 'LEAD_CONVERTED'])[1 + g % 10],
       CASE cat WHEN 'backoff' THEN 'BZION_HUB' WHEN 'pull' THEN 'PARTNER_PORTAL'
                WHEN 'failed' THEN (ARRAY['BZION_HUB', 'SALESFORCE'])[1 + g % 2]
                ELSE (CASE WHEN (g * 11) % 20 < 12 THEN 'BZION_HUB'
                           WHEN (g * 11) % 20 < 17 THEN 'SALESFORCE'
                           ELSE 'PARTNER_PORTAL' END) END,
       CASE WHEN (g * 13) % 10 < 3 THEN 'HIGH' WHEN (g * 13) % 10 < 8 THEN 'NORMAL' ELSE 'LOW' END,
       jsonb_build_object('formSubmissionId', gen_random_uuid(), 'leadId', gen_random_uuid(),
                          'formType', 'quote_request', 'email', 'buyer' || g || '@company.com',
                          'name', 'John Smith', 'companyName', 'Company Ltd',
                          'leadScore', 40 + g % 60, 'submittedAt', created),
       cat = 'delivered',
       CASE WHEN cat = 'delivered' THEN created + (50 + g % 900) * interval '1 millisecond' END,
       created, md5(g::text),
       CASE cat WHEN 'delivered' THEN 'DELIVERED' WHEN 'failed' THEN 'FAILED' ELSE 'PENDING' END,
       CASE cat WHEN 'backoff' THEN 1 + g % 5 WHEN 'pull' THEN 0
                -- a quarter exhausted every try, the rest answered 410 Gone early
                WHEN 'failed' THEN (CASE WHEN g % 4 = 0 THEN 28 ELSE 1 + g % 3 END)
                ELSE 1 + (g <= ${twice})::int END,
       CASE cat WHEN 'backoff' THEN now() + (1800 + g % 5400) * interval '1 second'
                ELSE created END,
       CASE cat WHEN 'backoff' THEN 'HTTP 503' WHEN 'failed' THEN 'HTTP 410' END,
       CASE WHEN cat = 'failed' THEN created + interval '1 day' END
FROM (
    SELECT g,
           CASE WHEN g <= ${backoff} THEN 'backoff'
                WHEN g <= ${backoff} + ${pull} THEN 'pull'
                WHEN g <= ${backoff} + ${pull} + ${failed} THEN 'failed'
                ELSE 'delivered' END AS cat,
           CASE WHEN g <= ${backoff} THEN now() - (g % 7200) * interval '1 second'
                WHEN g <= ${backoff} + ${pull}
                    THEN now() - ((g::bigint * 7919) % (3 * 86400)) * interval '1 second'
                ELSE now() - ((g::bigint * 7919) % (60 * 86400)) * interval '1 second'
           END AS created
    FROM generate_series(1, ${n}) AS g
) s
"""

# One row per attempt a notification records (its `attempts`): the last of a delivered one
# answered 200, the others 503 (410 for the last of a failed one).
ATTEMPTS = """
INSERT INTO crm_notification_attempts (notification_id, target_system, attempt_number,
                                       started_at, duration_ms, http_status, error, response_body)
SELECT n.id, n.target_system, k, n.created_at + (k - 1) * interval '30 seconds',
       15 + (k * 37 + n.attempts * 11) % 180,
       CASE WHEN n.status = 'DELIVERED' AND k = n.attempts THEN 200
            WHEN n.status = 'FAILED' AND k = n.attempts THEN 410 ELSE 503 END,
       NULL,
       CASE WHEN n.status = 'DELIVERED' AND k = n.attempts THEN '{"ok":true}'
            ELSE 'Service Unavailable' END
FROM crm_notifications n CROSS JOIN LATERAL generate_series(1, n.attempts) AS k
"""


def twice_delivered(s: Sizes) -> int:
    """Delivered rows that took two attempts, so the attempt rows total `s.attempts`."""
    failed = sum(28 if g % 4 == 0 else 1 + g % 3 for g in range(1, s.failed + 1))
    backoff = sum(1 + g % 5 for g in range(1, s.backoff + 1))
    delivered = s.notifications - s.backoff - s.unread_pull - s.failed
    extra = s.attempts - delivered - failed - backoff
    # g counts from 1 over all rows: the first delivered row is g = backoff + pull + failed + 1
    return s.backoff + s.unread_pull + s.failed + max(0, min(extra, delivered))


HISTORY = timedelta(days=61)  # the notifications loaded span 60 days


async def make_partitions(settings: Settings) -> list[str]:
    """The weekly partitions the beat would have made over the data's 60 days, and ahead."""
    db = Database(settings, request_budget=False)
    try:
        async with db.transaction() as conn:
            now, period = utcnow(), settings.partition_period
            return await ensure_partitions(conn, now - HISTORY, period, HISTORY // period + AHEAD)
    finally:
        await db.dispose()


def load(url: str, s: Sizes, outbox_only: bool = False) -> dict[str, float]:
    seconds: dict[str, float] = {}
    steps = [
        ("leads", LEADS, {"n": s.leads}),
        ("form_submissions", FORMS, {"n": s.forms}),
        ("newsletter_subscribers", SUBSCRIBERS, {"n": s.subscribers}),
        ("crm_notifications", NOTIFICATIONS, {"n": s.notifications, "backoff": s.backoff,
         "pull": s.unread_pull, "failed": s.failed, "twice": twice_delivered(s)}),
        ("crm_notification_attempts", ATTEMPTS, {}),
    ]  # fmt: skip
    if outbox_only:
        steps = [step for step in steps if step[0] in OUTBOX_TABLES]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        for table, sql, params in steps:
            t0 = time.perf_counter()
            # trusted integers, substituted: no parameters, so `%` stays SQL's modulo
            conn.execute(Template(sql).substitute(params))
            seconds[table] = time.perf_counter() - t0
            log(f"loaded {table} in {seconds[table]:.1f} s")
        t0 = time.perf_counter()
        for table, *_ in steps:
            conn.execute(f"VACUUM ANALYZE {table}")
        seconds["vacuum analyze"] = time.perf_counter() - t0
    return seconds


def counts(url: str) -> dict[str, int]:
    tables = ("leads", "form_submissions", "newsletter_subscribers", *OUTBOX_TABLES)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in tables)
        ).fetchone()
    assert row is not None
    return dict(zip(tables, (int(x) for x in row), strict=True))


def table_bytes(url: str) -> dict[str, int]:
    """Heap, indexes and TOAST of every partition (a partitioned parent has no storage)."""
    sql = "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree(%s)"
    with psycopg.connect(url) as conn:
        return {t: int(conn.execute(sql, (t,)).fetchone()[0]) for t in OUTBOX_TABLES}  # type: ignore[index]


# --------------------------------------------------------------------------- HTTP reads


def timed_calls(call: Callable[[], httpx.Response], n: int = CALLS) -> list[float]:
    """One warm-up call, then n timed ones; every answer must be a 200."""
    secs: list[float] = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        r = call()
        elapsed = time.perf_counter() - t0
        if r.status_code != 200:
            raise RuntimeError(f"{r.request.url} answered {r.status_code}: {r.text[:300]}")
        if i:
            secs.append(elapsed)
    return secs


def http_reads(port: int) -> tuple[list[Timing], Timing]:
    base = f"http://127.0.0.1:{port}"
    reads: list[Timing] = []
    with httpx.Client(base_url=base, timeout=60) as admin, httpx.Client(base_url=base) as pull:
        floor_t = Timing.of(
            "floor: GET /health/live (same server)",
            timed_calls(lambda: admin.get("/health/live")), None, "",
        )  # fmt: skip
        floor = f"{floor_t.median_ms:.1f}"
        r = admin.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        if r.status_code != 200:
            raise RuntimeError(f"sign-in failed: {r.status_code} {r.text[:300]}")

        def get(client: httpx.Client, path: str, **params: Any) -> Callable[[], httpx.Response]:
            return lambda: client.get(path, params=params)

        plan: list[tuple[str, Callable[[], httpx.Response]]] = [
            *((f"dashboard page ?tab={tab}", get(admin, "/admin/crm-sync", tab=tab))
              for tab in ("leads", "forms", "subscribers", "notifications")),
            *((f"GET /api/admin/monitoring?days={d}", get(admin, "/api/admin/monitoring", days=d))
              for d in (7, 90, 365)),
            ("GET /api/admin/crm-sync", get(admin, "/api/admin/crm-sync")),
            ("pull GET /api/v1/crm-notifications read=false",
             get(pull, "/api/v1/crm-notifications", targetSystem=PULL_TARGET, read="false")),
            ("GET /api/admin/leads/counts", get(admin, "/api/admin/leads/counts")),
            ("GET /api/admin/crm-notifications?status=FAILED",
             get(admin, "/api/admin/crm-notifications", status="FAILED")),
            (f"GET /api/admin/leads?source={RARE_SOURCE}",
             get(admin, "/api/admin/leads", source=RARE_SOURCE)),
        ]  # fmt: skip
        pull.headers["x-api-key"] = PULL_KEY
        for name, call in plan:
            log(f"timing {name}")
            reads.append(Timing.of(name, timed_calls(call), TARGET_READ_MS, floor))

        # the paged list: page 1 (warm-up), then pages 2..21 by cursor
        cursor: list[str | None] = [None]

        def next_page() -> httpx.Response:
            params: dict[str, Any] = {"limit": 50}
            if cursor[0]:
                params["cursor"] = cursor[0]
            r = admin.get("/api/admin/leads", params=params)
            cursor[0] = r.json().get("nextCursor") if r.status_code == 200 else None
            return r

        log("timing the paged leads list")
        reads.append(Timing.of("GET /api/admin/leads?limit=50, pages 2-21 by cursor",
                               timed_calls(next_page), TARGET_READ_MS, floor))  # fmt: skip
    return reads, floor_t


# --------------------------------------------------------------------------- domain functions


async def repeat(work: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    secs = []
    for _ in range(n):
        t0 = time.perf_counter()
        await work()
        secs.append(time.perf_counter() - t0)
    return secs


async def domain_runs(
    settings: Settings,
    sizes: Sizes,
    retention_days: float,
    sql_floor: str,
    only_retention: bool,
    copy_url: str,
) -> tuple[list[Timing], dict[str, Any]]:
    db = Database(settings, request_budget=False)
    engine = db.engine
    out: list[Timing] = []
    try:
        if not only_retention:
            await beat_and_claim_runs(settings, sizes, sql_floor, engine, out)
        retention = await retention_runs(settings, retention_days, sql_floor, engine, out, copy_url)
        return out, retention
    finally:
        await db.dispose()


async def beat_and_claim_runs(
    settings: Settings, sizes: Sizes, sql_floor: str, engine: Any, out: list[Timing]
) -> None:

    async def snapshot() -> None:
        async with engine.begin() as conn:
            await take_snapshot(conn, utcnow())

    async def stale() -> None:
        async with engine.begin() as conn:
            await check_stale(conn, settings.stale_after)

    log("beat tasks: stats snapshot, stale check")
    out.append(
        Timing.of(
            "beat: stats snapshot (take_snapshot), 3 runs",
            await repeat(snapshot, 3),
            TARGET_READ_MS,
            sql_floor,
        )
    )
    out.append(Timing.of("beat: stale check (check_stale), 3 runs",
                         await repeat(stale, 3), TARGET_READ_MS, sql_floor))  # fmt: skip

    async def claim_timings(label: str) -> Timing:
        found: list[int] = []
        sent: list[tuple[str, Any]] = []

        def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if statement.startswith("UPDATE crm_notifications"):
                sent.append((statement, params))

        async with engine.connect() as conn:  # one connection, as a dispatcher's loop

            async def claim() -> None:
                async with conn.begin():
                    batch = await claim_due(
                        conn, "bench-scale", [PUSH_TARGET], settings.batch_size, settings.lease
                    )
                    found.append(len(batch))

            event.listen(engine.sync_engine, "before_cursor_execute", capture)
            await claim()  # warm-up: the connection's first statement
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
            secs = await repeat(claim, CALLS)
            # the database's own share: EXPLAIN ANALYZE of the same statement, rolled back
            async with conn.begin() as tx:
                statement, params = sent[0]
                plan = await conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params
                )
                server_ms = float(plan.scalar_one()[0]["Execution Time"])
                await tx.rollback()
        if any(found):
            raise RuntimeError(f"the claim found due rows: {found}")
        return Timing.of(
            f"claim, {sizes.backoff:,} in backoff, none due, {label}", secs,
            TARGET_CLAIM_MS, sql_floor, server_execution_ms=round(server_ms, 3),
        )  # fmt: skip

    log(f"claim without {CLAIM_INDEX}")
    async with engine.begin() as conn:
        definition = (
            await conn.exec_driver_sql(
                "SELECT pg_get_indexdef(%(i)s::regclass)", {"i": CLAIM_INDEX}
            )
        ).scalar_one()
        # a partitioned index reads "ON ONLY <table>": rebuilt ON the table, every partition
        definition = definition.replace(" ON ONLY ", " ON ")
        await conn.exec_driver_sql(f"DROP INDEX {CLAIM_INDEX}")
    out.append(await claim_timings(f"without {CLAIM_INDEX}"))
    async with engine.begin() as conn:
        t0 = time.perf_counter()
        await conn.exec_driver_sql(definition)
        built = time.perf_counter() - t0
        await conn.exec_driver_sql("ANALYZE crm_notifications")
    log(f"claim with {CLAIM_INDEX} (rebuilt in {built:.1f} s)")
    out.append(await claim_timings(f"with {CLAIM_INDEX}"))
    out[-1].notes["index_build_s"] = round(built, 2)


async def retention_runs(
    settings: Settings,
    retention_days: float,
    sql_floor: str,
    engine: Any,
    out: list[Timing],
    copy_url: str,
) -> dict[str, Any]:
    """Lookup by id, then retention: the DELETE path on `copy_url` (the same rows), then the
    product's partition path here."""
    async with engine.connect() as conn:
        n_partitions = len(await partitions_of(conn, "crm_notifications"))
        sample = (
            await conn.exec_driver_sql(
                "SELECT id, tableoid::regclass::text FROM crm_notifications"
                " WHERE created_at > now() - interval '1 day' LIMIT %(n)s",
                {"n": 2 * (CALLS + 1)},
            )
        ).all()
        await conn.rollback()
    ids, hot = [r[0] for r in sample], sample[0][1]
    one_partition = text(f"SELECT * FROM {hot} WHERE id = :i")  # a plain table's probe

    async def lookup() -> None:
        async with engine.connect() as conn:
            await get_notification(conn, ids.pop())

    async def lookup_one() -> None:
        async with engine.connect() as conn:
            (await conn.execute(one_partition, {"i": ids.pop()})).one()

    # alternated, so the machine's noise falls on both alike
    by_id: list[float] = []
    by_id_one: list[float] = []
    await lookup()  # warm-up
    await lookup_one()
    for _ in range(CALLS // 2):
        by_id += await repeat(lookup, 1)
        by_id_one += await repeat(lookup_one, 1)
    floor = Timing.of("", by_id_one, None, "")
    out.append(Timing.of(
        f"notification by id only (admin detail; ack, replay alike), {n_partitions} partitions",
        by_id, TARGET_READ_MS, f"{floor.median_ms:.2f}",
        floor_is="the same probe on the hot partition alone (a plain table)",
    ))  # fmt: skip

    retention = timedelta(days=retention_days)
    log(f"retention, {retention_days:g} days: the DELETE path on a copy, then VACUUM")
    copy = Database(Settings(database_url=copy_url), request_budget=False)
    try:
        async with copy.engine.begin() as conn:
            t0 = time.perf_counter()
            deleted = await delete_expired_rows(conn, utcnow() - retention)
        delete_secs = time.perf_counter() - t0
        async with copy.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            t0 = time.perf_counter()
            await conn.exec_driver_sql("VACUUM crm_notifications, crm_notification_attempts")
            vacuum_secs = time.perf_counter() - t0
    finally:
        await copy.dispose()
    delete_after = table_bytes(copy_url)
    log(f"retention, {retention_days:g} days: partitions")
    before = table_bytes(settings.database_url)
    marks: list[float] = []

    def mark_detach(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "DETACH PARTITION" in statement and not marks:
            marks.append(time.perf_counter())

    # As the beat task runs it: one period per transaction, the lock held only for that one.
    totals: dict[str, int] = {}
    windows: list[float] = []
    t0 = time.perf_counter()
    event.listen(engine.sync_engine, "before_cursor_execute", mark_detach)
    try:
        while True:
            marks.clear()
            async with engine.begin() as conn:
                removed = await purge_expired(
                    conn, utcnow(), retention, settings.idempotency_ttl, 1
                )
            if marks:  # first DETACH to the end of the commit (which unlinks the files)
                windows.append(time.perf_counter() - marks[0])
            totals = {k: totals.get(k, 0) + v for k, v in removed.as_dict().items()}
            if not removed.partitions:
                break
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", mark_detach)
    secs = time.perf_counter() - t0
    after = table_bytes(settings.database_url)
    async with engine.connect() as conn:
        kept = {
            t: int((await conn.exec_driver_sql(f"SELECT count(*) FROM {t}_kept")).scalar_one())
            for t in OUTBOX_TABLES
        }
        left = {
            t: int((await conn.exec_driver_sql(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in OUTBOX_TABLES
        }
    return {
        "seconds": secs,
        "locked_seconds": windows,
        "removed": totals,
        "bytes_before": before,
        "bytes_after": after,
        "kept_in_default": kept,
        "rows_after": left,
        "days": retention_days,
        "period_days": settings.partition_period.days,
        "delete_path": {
            "seconds": delete_secs,
            "vacuum_seconds": vacuum_secs,
            "attempts": deleted[0],
            "notifications": deleted[1],
            "bytes_after": delete_after,
        },
    }


async def make_admin(settings: Settings) -> None:
    db = Database(settings, request_budget=False)
    try:
        async with db.transaction() as conn:
            await create_admin(conn, ADMIN_EMAIL, ADMIN_PASSWORD, "Bench Admin")
    finally:
        await db.dispose()


def sql_round_trip(url: str) -> Timing:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT 1")
        secs = []
        for _ in range(CALLS):
            t0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            secs.append(time.perf_counter() - t0)
    return Timing.of("floor: SELECT 1 round trip (psycopg)", secs, None, "")


# --------------------------------------------------------------------------- report


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def report(
    rows: dict[str, int],
    reads: list[Timing],
    floors: list[Timing],
    tasks: list[Timing],
    retention: dict[str, Any],
    info: dict[str, str],
) -> None:
    head = ("", "median ms", "p95 ms", "target", "floor ms", "")
    lines = [head]
    for t in [*reads, *tasks]:
        target = f"< {t.target_ms:g}" if t.target_ms is not None else ""
        lines.append((t.name, f"{t.median_ms:,.1f}", f"{t.p95_ms:,.1f}", target, t.floor,
                      t.verdict))  # fmt: skip
    for t in floors:
        lines.append((t.name, f"{t.median_ms:,.2f}", f"{t.p95_ms:,.2f}", "", "", ""))
    widths = [max(len(r[i]) for r in lines) for i in range(len(head))]
    print()
    print("scale benchmark: " + ", ".join(f"{n:,} {t}" for t, n in rows.items()))
    for i, r in enumerate(lines):
        if i in (1, len(reads) + 1, len(reads) + len(tasks) + 1):
            print()
        print("  " + r[0].ljust(widths[0]) + "".join(
            "  " + c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)))  # fmt: skip
    print()
    for t in tasks:
        if "server_execution_ms" in t.notes:
            print(f"  {t.name}: {t.notes['server_execution_ms']:.2f} ms of it in PostgreSQL "
                  "(EXPLAIN ANALYZE Execution Time, same statement)")  # fmt: skip
    removed, old = retention["removed"], retention["delete_path"]
    print(f"  retention ({retention['days']:g} days), {retention['period_days']}-day partitions "
          f"(purge_expired): {retention['seconds']:.1f} s, dropped "
          f"{removed['partitions']} partitions: {removed['notifications']:,} notifications and "
          f"{removed['attempts']:,} attempts; kept in DEFAULT "
          + ", ".join(f"{t} {n:,}" for t, n in retention["kept_in_default"].items())
          + "; rows left " + ", ".join(f"{t} {n:,}" for t, n in retention["rows_after"].items())
          )  # fmt: skip
    windows = retention["locked_seconds"] or [0.0]
    print(f"    one period per transaction ({len(retention['locked_seconds'])}); each holds the "
          f"parent's ACCESS EXCLUSIVE lock (first DETACH to commit) for at most "
          f"{max(windows):.2f} s (median {statistics.median(windows):.2f} s, total "
          f"{sum(windows):.2f} s)")  # fmt: skip
    print(f"    the DELETE path on a copy of the same rows: {old['seconds']:.1f} s for "
          f"{old['notifications']:,} notifications and {old['attempts']:,} attempts, then "
          f"{old['vacuum_seconds']:.1f} s of VACUUM (autovacuum's share); ratio partitions / "
          f"DELETE {retention['seconds'] / max(old['seconds'], 1e-9):.2f}")  # fmt: skip
    print(f"    {'':<26} {'before':>10}  {'partitions':>10}  {'DELETE+VACUUM':>13}")
    for table in OUTBOX_TABLES:
        print(f"    {table:<26} {mib(retention['bytes_before'][table]):>10}  "
              f"{mib(retention['bytes_after'][table]):>10}  "
              f"{mib(old['bytes_after'][table]):>13}")  # fmt: skip
    print()
    print("  settings")
    for k, v in info.items():
        print(f"    {k:<10} {v}")
    print()


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1/10 of every size")
    p.add_argument("--retention-days", type=float, default=7.0,
                   help="CRM_RETENTION_DAYS for the retention run (7)")  # fmt: skip
    p.add_argument("--keep-db", action="store_true", help="do not drop the database at the end")
    p.add_argument("--only-retention", action="store_true",
                   help="load, then the retention runs only (no API, beat or claim)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.scaled(0.1 if args.quick else 1.0)
    name = f"crm_bench_scale_{uuid.uuid4().hex[:8]}"
    url = db_url(name)
    env = {k: v for k, v in os.environ.items() if k != "CRM_DEBUG"}
    env |= {
        "DATABASE_URL": url,
        "CRM_RATE_LIMIT": "off",  # one loopback client reading, not abuse
        f"CRM_TARGET_{PUSH_TARGET}_URL": "http://127.0.0.1:9/hooks",
        f"CRM_TARGET_{PUSH_TARGET}_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        f"CRM_TARGET_{OTHER_PUSH}_URL": "http://127.0.0.1:9/hooks",
        f"CRM_TARGET_{OTHER_PUSH}_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        f"CRM_TARGET_{PULL_TARGET}_API_KEY": PULL_KEY,
    }
    settings = Settings.from_env(env)
    load_before = os.getloadavg()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"database {name}")
    tmp = Path(tempfile.mkdtemp(prefix="crm_bench_scale_"))
    api: subprocess.Popen[bytes] | None = None
    try:
        upgrade(url)
        asyncio.run(make_partitions(settings))
        t0 = time.perf_counter()
        load_secs = load(url, sizes, outbox_only=args.only_retention)
        loaded_in = time.perf_counter() - t0
        rows = counts(url)
        asyncio.run(make_admin(settings))

        load_mid = os.getloadavg()
        reads: list[Timing] = []
        http_floor = Timing.of("floor: GET /health/live (skipped)", [0.0], None, "")
        if not args.only_retention:
            port = free_port()
            log(f"API: crm api --workers 1 on 127.0.0.1:{port}")
            api = start_api(env, port, 1, tmp / "api.log")
            reads, http_floor = http_reads(port)
            stop_api(api)
        sql_floor = sql_round_trip(url)
        log(f"copy for the DELETE path: {name}_delete")
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}_delete" TEMPLATE "{name}"')
        tasks, retention = asyncio.run(
            domain_runs(
                settings, sizes, args.retention_days, f"{sql_floor.median_ms:.2f}",
                args.only_retention, db_url(f"{name}_delete"),
            )
        )  # fmt: skip
        load_after = os.getloadavg()
        info = {
            "load": f"{loaded_in:.0f} s (" + ", ".join(f"{t} {s:.0f} s"
                    for t, s in load_secs.items()) + ")",
            "API": f"{crm_executable()} api --workers 1, CRM_RATE_LIMIT=off; {CALLS} calls per "
                   "read after one warm-up, one at a time; floor = GET /health/live",
            "targets": f"{PUSH_TARGET} and {OTHER_PUSH} push, {PULL_TARGET} pull (API key)",
            "claim": f"claim_due for {PUSH_TARGET}, batch {settings.batch_size}, {CALLS} calls "
                     "on one connection, each its own transaction",
            "machine": f"{os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} before "
                       f"loading, {load_mid[0]:.2f} before the reads, {load_after[0]:.2f} at the "
                       "end (other processes skew every figure)",
            "database": f"{name}" + (" (kept)" if args.keep_db else " (dropped at the end)"),
        }  # fmt: skip
        report(rows, reads, [http_floor, sql_floor], tasks, retention, info)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "rows": rows, "sizes": asdict(sizes),
                "reads": [asdict(t) for t in reads],
                "floors": [asdict(t) for t in (http_floor, sql_floor)],
                "tasks": [asdict(t) for t in tasks],
                "retention": retention, "settings": info,
            }, indent=2))  # fmt: skip
        return 0
    finally:
        if api is not None:
            stop_api(api)
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_delete" WITH (FORCE)')
            if not args.keep_db:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
