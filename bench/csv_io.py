"""Leads CSV export and import: the COPY path against a plain COPY and the old row-by-row path.

In one run, on loopback (PostgreSQL 127.0.0.1:5432, trust auth):

1. creates its own database `crm_bench_csv_<random>`, migrates it, defines one lead custom
   field (`region`, a select) and generates a CSV of `--rows` leads (200,000) in a temporary
   file: names, companies, phones (half start with `+`, so neutralised on export), three types,
   five sources, scores 0-100, assignees, `cf.region`;
2. import, COPY path (`domain.leads.csv_copy.copy_import_leads`, as `crm leads import` runs it
   on PostgreSQL: reading the file, validating, staging, one set-based insert of leads, NEW_LEAD
   rows for two routes (one of them HIGH only) and audit rows, commit);
3. export, COPY path (`export_csv`, as `crm leads export` runs it, into a file) and the ceiling:
   a plain `COPY leads TO STDOUT (FORMAT csv)` of the same rows into a file;
4. export, old path (`csv_io.export_leads` + csv.writer: pages of `list_leads`);
5. import ceiling: leads (and what hangs off them) truncated, then a plain
   `COPY leads FROM STDIN (FORMAT csv)` of the rows the plain COPY exported;
6. import, old path (`csv_io.import_leads`, batches of 500 in savepoints) into empty tables, on
   the first `--old-rows` rows of the same file (20,000: at the old speed the whole file takes
   minutes; `--old-rows 0` runs the whole file);
7. prints rows/s of each next to its ceiling and the ratios, drops the database.

    uv run python bench/csv_io.py
    uv run python bench/csv_io.py --rows 50000 --old-rows 5000   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import itertools
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.forms_submit import ADMIN_URL, db_url, log  # noqa: E402
from domain.custom_fields.definitions import CreateField, create_field  # noqa: E402
from domain.enums import CustomFieldEntity, CustomFieldType, NotificationPriority  # noqa: E402
from domain.leads.csv_copy import copy_import_leads, export_csv  # noqa: E402
from domain.leads.csv_io import ImportReport, export_leads, import_leads, read_csv  # noqa: E402
from domain.leads.queries import LeadFilters, LeadSort  # noqa: E402
from domain.rules import Route  # noqa: E402
from infra.db import Database  # noqa: E402
from infra.settings import Settings  # noqa: E402

ROUTES = (Route("BZION_HUB"), Route("SALES_DESK", min_priority=NotificationPriority.HIGH))
ACTOR = "bench"
TYPES = ("LEAD", "CONTACT_REQUEST", "QUOTE_REQUEST")
SOURCES = ("manual_import", "trade_show", "referral", "web", "partner")
REGIONS = ("north", "south", "east", "west")
OUTBOX_TABLES = "leads, crm_notifications, lead_audit_entries"


def write_csv(path: Path, n: int, seed: int = 14) -> None:
    rnd = random.Random(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["email", "name", "companyName", "phone", "type", "source", "leadScore",
             "assignedTo", "cf.region"]
        )  # fmt: skip
        for i in range(n):
            w.writerow(
                [
                    f"lead{i}@company{i % 5000}.example",
                    f"Lead Number {i}",
                    f"Company {i % 5000}, Ltd" if i % 3 else "",
                    f"+44 20 {i:07d}" if i % 2 else f"020 {i:07d}",
                    TYPES[i % 3],
                    SOURCES[i % 5],
                    rnd.randint(0, 100),
                    f"rep{i % 20}@crm.example" if i % 4 else "",
                    REGIONS[i % 4] if i % 5 else "",
                ]
            )


def rate(rows: int, secs: float) -> float:
    return rows / secs if secs > 0 else float("nan")


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = await work()
    return time.perf_counter() - t0, result


async def run(settings: Settings, url: str, csv_path: Path, tmp: Path, old_rows: int) -> dict:
    db = Database(settings)
    out: dict[str, Any] = {}
    try:
        async with db.transaction() as conn:
            await create_field(
                conn,
                CreateField(
                    entity=CustomFieldEntity.LEAD,
                    key="region",
                    label="Region",
                    type=CustomFieldType.SELECT,
                    options=list(REGIONS),
                ),
            )

        async def import_new() -> ImportReport:
            with csv_path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
                async with db.transaction() as conn:
                    return await copy_import_leads(conn, read_csv(f), ACTOR, ROUTES)

        secs, report = await timed(import_new)
        assert not report.errors, report.errors[:3]
        out["import_new"] = (report.imported, secs)
        log(f"import (COPY path): {report.imported} leads in {secs:.2f} s")

        async def export_new() -> int:
            with (tmp / "new.csv").open("wb") as f:
                async with db.transaction() as conn:
                    return await export_csv(conn, LeadFilters(), LeadSort.NEWEST, f)

        secs, n = await timed(export_new)
        out["export_new"] = (n, secs)
        log(f"export (COPY path): {n} leads in {secs:.2f} s")

        with psycopg.connect(url) as conn, conn.cursor() as cur:
            t0 = time.perf_counter()
            plain = (tmp / "plain.csv").open("wb")
            with plain as f, cur.copy("COPY leads TO STDOUT (FORMAT csv)") as copy:
                for data in copy:
                    f.write(data)
            out["export_ceiling"] = (cur.rowcount, time.perf_counter() - t0)
        log(f"export ceiling (plain COPY): {out['export_ceiling'][1]:.2f} s")

        async def export_old() -> int:
            n = -1
            with (tmp / "old.csv").open("w", newline="") as f:
                writer = csv.writer(f, lineterminator="\n")
                async for row in export_leads(db, LeadFilters(), LeadSort.NEWEST):
                    writer.writerow(row)
                    n += 1
            return n

        secs, n = await timed(export_old)
        out["export_old"] = (n, secs)
        log(f"export (old path): {n} leads in {secs:.2f} s")

        with psycopg.connect(url) as conn:
            conn.execute(f"TRUNCATE {OUTBOX_TABLES} CASCADE")
            conn.commit()
            with conn.cursor() as cur:
                t0 = time.perf_counter()
                plain = (tmp / "plain.csv").open("rb")
                with plain as f, cur.copy("COPY leads FROM STDIN (FORMAT csv)") as copy:
                    while chunk := f.read(1 << 16):
                        copy.write(chunk)
                conn.commit()
                out["import_ceiling"] = (cur.rowcount, time.perf_counter() - t0)
            conn.execute(f"TRUNCATE {OUTBOX_TABLES} CASCADE")
            conn.commit()
        log(f"import ceiling (plain COPY): {out['import_ceiling'][1]:.2f} s")

        async def import_old() -> ImportReport:
            with csv_path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
                rows = read_csv(f)
                if old_rows:
                    rows = itertools.islice(rows, old_rows)
                async with db.transaction() as conn:
                    return await import_leads(conn, rows, ACTOR, ROUTES)

        secs, report = await timed(import_old)
        out["import_old"] = (report.imported, secs)
        log(f"import (old path): {report.imported} leads in {secs:.2f} s")
        async with db.transaction() as conn:
            out["outbox_rows_per_lead"] = (
                await conn.execute(
                    text("SELECT count(*)::float / greatest(1, (SELECT count(*) FROM leads)) "
                         "FROM crm_notifications")
                )
            ).scalar_one()  # fmt: skip
    finally:
        await db.dispose()
    return out


def report(out: dict[str, Any], rows: int, load: tuple[float, float]) -> str:
    lines = io.StringIO()
    p = lambda s="": print(s, file=lines)  # noqa: E731
    p(f"Leads CSV, {rows:,} rows; routes: BZION_HUB (all), SALES_DESK (HIGH only): "
      f"{out['outbox_rows_per_lead']:.2f} outbox rows per lead; "
      f"{os.cpu_count()} cores, load average {load[0]:.2f} -> {load[1]:.2f}")  # fmt: skip
    p()
    p(f"| {'path':<44} | {'rows':>8} | {'seconds':>7} | {'rows/s':>9} | {'of ceiling':>10} |")
    p(f"|{'-' * 46}|{'-' * 10}|{'-' * 9}|{'-' * 11}|{'-' * 12}|")
    for what, key, ceiling in (
        ("export: plain COPY leads TO STDOUT (ceiling)", "export_ceiling", "export_ceiling"),
        ("export: COPY path (crm leads export)", "export_new", "export_ceiling"),
        ("export: old path (pages of list_leads)", "export_old", "export_ceiling"),
        ("import: plain COPY leads FROM STDIN (ceiling)", "import_ceiling", "import_ceiling"),
        ("import: COPY path (crm leads import)", "import_new", "import_ceiling"),
        ("import: old path (batches in savepoints)", "import_old", "import_ceiling"),
    ):
        n, secs = out[key]
        r, c = rate(n, secs), rate(*out[ceiling])
        p(f"| {what:<44} | {n:>8,} | {secs:>7.2f} | {r:>9,.0f} | {r / c:>10.2f} |")
    p()
    p(f"export after/before: {rate(*out['export_new']) / rate(*out['export_old']):.1f}x; "
      f"import after/before: {rate(*out['import_new']) / rate(*out['import_old']):.1f}x")  # fmt: skip
    return lines.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--old-rows", type=int, default=20_000, help="0: the whole file")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    name = f"crm_bench_csv_{uuid.uuid4().hex[:8]}"
    url = db_url(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"database {name}")
    try:
        from infra.migrate import upgrade

        upgrade(url)
        with tempfile.TemporaryDirectory(prefix="crm_bench_csv_") as d:
            tmp = Path(d)
            write_csv(tmp / "leads.csv", args.rows)
            log(f"{args.rows:,} rows generated")
            before = os.getloadavg()[0]
            out = asyncio.run(
                run(Settings(database_url=url), url, tmp / "leads.csv", tmp, args.old_rows)
            )
            print(report(out, args.rows, (before, os.getloadavg()[0])))
    finally:
        if not args.keep_db:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
