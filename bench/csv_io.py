"""Leads CSV export and import: the COPY path against a plain COPY and the old row-by-row path.

In one run, on loopback (PostgreSQL 127.0.0.1:5432, trust auth):

1. creates its own database `crm_bench_csv_<random>`, migrates it, defines one lead custom
   field (`region`, a select) and generates a CSV of `--rows` leads (200,000) in a temporary
   file: names, companies, phones (half start with `+`, so neutralised on export), three types,
   five sources, scores 0-100, assignees, `cf.region`;
2. import, COPY path (`domain.leads.csv_copy.copy_import_leads`, as `crm leads import` runs it
   on PostgreSQL: reading the file and validating on a worker thread while the database writes
   the chunk before, each chunk staged then written by one set-based insert of leads, NEW_LEAD
   rows for two routes (one of them HIGH only) and audit rows, commit);
3. export, COPY path (`export_csv`, as `crm leads export` runs it, into a file) and the ceiling:
   a plain `COPY leads TO STDOUT (FORMAT csv)` of the same rows into a file;
4. export, old path (`csv_io.export_leads` + csv.writer: pages of `list_leads`);
5. import floor: what the COPY path wrote (leads, NEW_LEAD rows, audit rows) dumped with
   `COPY ... TO STDOUT (FORMAT binary)`, truncated, and written back by three plain binary
   COPYs in one transaction: the database's own cost of those rows, with no CSV, no checks and
   no SELECT (the floor of any import that writes them on one connection);
6. import ceiling: leads (and what hangs off them) truncated, then a plain
   `COPY leads FROM STDIN (FORMAT csv)` of the rows the plain COPY exported;
7. import, old path (`csv_io.import_leads`, batches of 500 in savepoints) into empty tables, on
   the first `--old-rows` rows of the same file (20,000: at the old speed the whole file takes
   minutes; `--old-rows 0` runs the whole file);
8. prints rows/s of each next to its ceiling and the ratios, and for the COPY path import and
   the floor the CPU seconds of the client process and of its PostgreSQL backend (read from
   /proc: the server is on this machine), so a figure taken on a busy machine can be read;
   drops the database.

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
WRITTEN = ("leads", "crm_notifications", "lead_audit_entries")  # what an import writes
_TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds a local PostgreSQL backend has used (nan when /proc does not show it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICKS


def write_back(url: str) -> tuple[int, float, float]:
    """The import floor: the rows of WRITTEN dumped, truncated and COPYed back (binary, one
    transaction); (leads, seconds, backend CPU seconds)."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        dumps = []
        for table in WRITTEN:
            cur.execute(
                "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s AND is_generated = 'NEVER'",
                (table,),
            )
            columns = cur.fetchone()[0]  # type: ignore[index]
            buf = io.BytesIO()
            with cur.copy(f"COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT binary)") as cp:
                for data in cp:
                    buf.write(data)
            dumps.append((table, columns, buf.getvalue()))
        cur.execute(f"TRUNCATE {OUTBOX_TABLES} CASCADE")
        conn.commit()
        pid = conn.info.backend_pid
        t0, c0 = time.perf_counter(), backend_cpu(pid)
        for table, columns, data in dumps:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)") as cp:
                for start in range(0, len(data), 1 << 20):
                    cp.write(data[start : start + (1 << 20)])
            if table == "leads":
                leads = cur.rowcount
        conn.commit()
        return leads, time.perf_counter() - t0, backend_cpu(pid) - c0


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

        server: list[float] = []  # the import's backend: pid, CPU seconds at its start

        async def import_new() -> ImportReport:
            with csv_path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
                async with db.transaction() as conn:
                    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                    server.extend((pid, backend_cpu(pid)))
                    return await copy_import_leads(conn, read_csv(f), ACTOR, ROUTES)

        client = time.process_time()
        secs, report = await timed(import_new)
        assert not report.errors, report.errors[:3]
        out["import_new"] = (report.imported, secs)
        out["import_new_cpu"] = (
            time.process_time() - client,
            backend_cpu(int(server[0])) - server[1],
        )
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

        leads, secs, cpu = await asyncio.to_thread(write_back, url)
        out["import_floor"] = (leads, secs)
        out["import_floor_cpu"] = (0.0, cpu)
        log(f"import floor (the same rows, plain binary COPY): {secs:.2f} s")

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
    p(f"| {'path':<45} | {'rows':>8} | {'seconds':>7} | {'rows/s':>9} | {'of ceiling':>10} |")
    p(f"|{'-' * 47}|{'-' * 10}|{'-' * 9}|{'-' * 11}|{'-' * 12}|")
    for what, key, ceiling in (
        ("export: plain COPY leads TO STDOUT (ceiling)", "export_ceiling", "export_ceiling"),
        ("export: COPY path (crm leads export)", "export_new", "export_ceiling"),
        ("export: old path (pages of list_leads)", "export_old", "export_ceiling"),
        ("import: plain COPY leads FROM STDIN (ceiling)", "import_ceiling", "import_ceiling"),
        ("import: same rows as the import, binary COPY", "import_floor", "import_ceiling"),
        ("import: COPY path (crm leads import)", "import_new", "import_ceiling"),
        ("import: old path (batches in savepoints)", "import_old", "import_ceiling"),
    ):
        n, secs = out[key]
        r, c = rate(n, secs), rate(*out[ceiling])
        p(f"| {what:<45} | {n:>8,} | {secs:>7.2f} | {r:>9,.0f} | {r / c:>10.2f} |")
    p()
    n, secs = out["import_new"]
    client, server = out["import_new_cpu"]
    p(f"import, COPY path: {rate(*out['import_new']) / rate(*out['import_floor']):.2f} of the floor "
      f"(leads, NEW_LEAD and audit rows by plain COPY: {out['import_floor'][1]:.2f} s, "
      f"{out['import_floor_cpu'][1]:.2f} s of server CPU); its CPU: client {client:.2f} s, "
      f"server {server:.2f} s, wall {secs:.2f} s")  # fmt: skip
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
