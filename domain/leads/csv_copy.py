"""CSV import and export of leads at COPY speed (PostgreSQL; SQLite keeps domain.leads.csv_io).

Export is one `COPY (SELECT ...) TO STDOUT (FORMAT csv)`: the same columns, filters and order
as the paged export, with OWASP's formula neutralisation done in SQL (a cell starting with
`= + - @`, tab or carriage return gets a leading `'`), so Python only moves bytes.

Import validates each row in Python exactly as the row-by-row path does (same `file:line:
reason` for every bad row, via `csv_io.validated_rows`) and writes the good ones in chunks, all
in the caller's one transaction: a chunk is streamed into a temporary staging table with
`COPY ... FROM STDIN`, then one set-based statement writes its leads (ids made by the
database), their NEW_LEAD outbox rows and their audit entries, skipping (email, source) pairs
that exist. While the database writes a chunk, a worker thread reads and checks the next one
(twice as many rows, up to MAX_CHUNK), so the two cores work at once: the database is the
bottleneck, at 1.15-1.4 times the CPU of COPYing the same rows (bench/csv_io.py). The
payload is the one builder's (`new_lead_notifications`), turned into `jsonb_build_object`
from its own output, and the routing is `priority_for`/`targets_for` tabulated for every
score. If the database refuses a chunk's statement (a constraint), it is undone and that
chunk's rows are written by the row-by-row path, which reports each row the database refuses
(after the rows the checks refused).
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from enum import Enum
from typing import Any, BinaryIO

import msgspec
import sqlalchemy.exc
from sqlalchemy import (
    ColumnElement,
    String,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.definitions import list_fields
from domain.custom_fields.values import CSV_PREFIX, apply_filters, filter_clauses
from domain.enums import CustomFieldEntity, LeadStatus, NotificationType
from domain.leads.csv_io import (
    BATCH_SIZE,
    EXPORT_COLUMNS,
    FORMULA_STARTS,
    IMPORT_LOCK,
    BatchWriter,
    ImportLead,
    ImportReport,
    RowError,
    import_leads,
    validated_rows,
)
from domain.leads.lifecycle import new_lead_notifications
from domain.leads.queries import LeadFilters, LeadSort
from domain.models import LEADS, utcnow
from domain.outbox.rows import mark_outbox_written
from domain.rules import LEAD_SCORE_MAX, LEAD_SCORE_MIN, Route, priority_for, targets_for
from infra.db import DATABASE_UNAVAILABLE
from infra.metrics import note_notifications

PROGRESS_EVERY = 1000
# Rows per chunk: the first small, so the database starts at once; each next one twice the last
# (reading and checking runs at more than twice the insert's rate, so it keeps ahead), up to a
# bound on what one chunk holds in memory.
FIRST_CHUNK = 2_000
MAX_CHUNK = 50_000
IMPORT_WORK_MEM = "256MB"
IMPORT_STATEMENT_TIMEOUT = "10min"
STAGING = "leads_import"
_STAGED = (
    "line",
    "email",
    "name",
    "company_name",
    "phone",
    "type",
    "source",
    "lead_score",
    "assigned_to",
    "custom_fields",
)


async def _driver(conn: AsyncConnection) -> Any:
    """The psycopg AsyncConnection under SQLAlchemy's, inside the same transaction."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


# --- export -------------------------------------------------------------------------------


# FORMULA_STARTS as SQL literals (`chr(9)` for a tab), for COPY's one-off statement.
_STARTS_SQL = ", ".join(
    f"'{ch}'" if ch.isprintable() and ch != "'" else f"chr({ord(ch)})" for ch in FORMULA_STARTS
)


def _neutralised(value: ColumnElement[Any]) -> ColumnElement[str]:
    """OWASP's rule in SQL, as csv_io._cell does it in Python."""
    return case(
        (
            func.left(value, 1).op("IN")(literal_column(f"({_STARTS_SQL})")),
            literal("'", String) + value,
        ),
        else_=value,
    )


def _iso(value: ColumnElement[Any]) -> ColumnElement[str]:
    """A timestamp as Python's isoformat() in UTC writes it (no fraction when it is zero)."""
    utc = func.timezone("UTC", value)
    return func.replace(func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'), ".000000+", "+")


def _bound(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


async def export_csv(
    conn: AsyncConnection, filters: LeadFilters, sort: LeadSort, out: BinaryIO
) -> int:
    """Write the header and every matching lead as CSV to `out`; the number of leads."""
    fields = await list_fields(conn, CustomFieldEntity.LEAD)
    c = LEADS.c
    columns = [
        cast(c.id, String),
        _neutralised(c.email),
        _neutralised(c.name),
        _neutralised(c.company_name),
        _neutralised(c.phone),
        cast(c.type, String),
        _neutralised(c.source),
        cast(c.status, String),
        c.lead_score,
        _neutralised(c.assigned_to),
        _iso(c.created_at),
        _iso(c.converted_at),
    ] + [_neutralised(c.custom_fields[f.key].as_string()) for f in fields]
    clauses = await filter_clauses(conn, LEADS, CustomFieldEntity.LEAD, filters.custom)
    stmt = apply_filters(filters.apply(select(*columns)), clauses)
    if sort == LeadSort.SCORE:
        stmt = stmt.order_by(c.lead_score.desc(), c.created_at.desc(), c.id.desc())
    else:
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc())
    compiled = stmt.compile(dialect=conn.dialect)
    params = {k: _bound(v) for k, v in compiled.params.items()}
    header = EXPORT_COLUMNS + [f"{CSV_PREFIX}{f.key}" for f in fields]
    out.write((",".join(header) + "\n").encode())
    driver = await _driver(conn)
    async with driver.cursor() as cur:
        async with cur.copy(f"COPY ({compiled}) TO STDOUT (FORMAT csv)", params) as copy:
            async for data in copy:
                out.write(data)
        return int(cur.rowcount)


# --- import -------------------------------------------------------------------------------


class _Score(int):
    """The lead_score column standing in for a score, in the payload template."""


_MARK = "\x00lead."  # prefix of a column standing in for a value, in the payload template


def _payload_sql(actor: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """`jsonb_build_object(...)` over the inserted lead `n`, in the one builder's shape: the
    builder is run once on column markers and each value it produced becomes that column (or
    a constant, such as createdBy and createdAt)."""
    lead: dict[str, Any] = {c.key: _MARK + c.key for c in LEADS.c}
    lead["lead_score"] = _Score(LEAD_SCORE_MAX)
    route = Route("template")  # every type, every priority: exactly one row
    # An empty context: the template is not a notification, nothing is counted in metrics.
    (row,) = contextvars.Context().run(new_lead_notifications, lead, actor, now, [route])
    parts, params = [], {}
    for i, (key, value) in enumerate(row["data"].items()):
        if isinstance(value, _Score):
            expr = "n.lead_score"
        elif isinstance(value, str) and value.startswith(_MARK):
            col = value[len(_MARK) :]
            expr = {
                "id": "n.id::text",
                "custom_fields": "COALESCE(n.custom_fields, '{}'::jsonb)",
            }.get(col, f"n.{col}")
        else:
            params[f"p{i}"] = json.dumps(value)
            expr = f"CAST(:p{i} AS jsonb)"
        params[f"k{i}"] = key
        parts.append(f"CAST(:k{i} AS text), {expr}")
    return f"jsonb_build_object({', '.join(parts)})", params


def _routing(routes: Iterable[Route]) -> dict[str, list[Any]]:
    """(score, priority, target) for every score a lead may have: the rules, tabulated."""
    scores: list[int] = []
    priorities: list[str] = []
    targets: list[str] = []
    for score in range(LEAD_SCORE_MIN, LEAD_SCORE_MAX + 1):
        priority = priority_for(NotificationType.NEW_LEAD, score)
        for target in targets_for(NotificationType.NEW_LEAD, routes, priority):
            scores.append(score)
            priorities.append(priority.value)
            targets.append(target)
    return {"r_score": scores, "r_priority": priorities, "r_target": targets}


# The audit rows come out lead by lead, status before lead_score (the lateral VALUES is the
# inner side of a nested loop over `n`), so ids keep the order audit_rows gives them: no sort.
# A lead already there (same email and source) is looked up for each staged row in
# idx_leads_email (the sources of that email, compared here): as a NOT EXISTS anti join, each
# chunk would hash every lead, those the chunks before it wrote included, and as a lookup on
# both columns the planner may AND in the index on source, a fifth of the table per row.
INSERT_ALL = """
WITH routing AS (
    SELECT * FROM unnest(CAST(:r_score AS int[]), CAST(:r_priority AS text[]),
                         CAST(:r_target AS text[])) AS r(score, priority, target)
), n AS (
    INSERT INTO leads (id, email, name, company_name, phone, type, source, status, lead_score,
                       assigned_to, metadata, created_at, updated_at, converted_at, custom_fields)
    SELECT gen_random_uuid(), s.email, s.name, s.company_name, s.phone, s.type, s.source,
           :status, s.lead_score, s.assigned_to, CAST(:metadata AS jsonb), :now, :now, NULL,
           s.custom_fields
    FROM leads_import s
    WHERE s.source <> ALL (ARRAY(SELECT l.source FROM leads l WHERE l.email = s.email))
    ORDER BY s.line
    RETURNING id, email, name, company_name, phone, type, source, status, lead_score,
              assigned_to, custom_fields
), notes AS (
    INSERT INTO crm_notifications (id, type, target_system, priority, data, read, created_at,
                                   status, attempts, next_attempt_at)
    SELECT gen_random_uuid(), :note_type, r.target, r.priority, {payload}, false, :now,
           :pending, 0, :now
    FROM n JOIN routing r ON r.score = n.lead_score
    RETURNING target_system
), audit AS (
    INSERT INTO lead_audit_entries (lead_id, actor, at, action, field, from_value, to_value)
    SELECT n.id, :actor, :now, 'imported', a.field, NULL, a.to_value
    FROM n CROSS JOIN LATERAL (VALUES ('status', n.status::text),
                                      ('lead_score', n.lead_score::text)) AS a(field, to_value)
)
SELECT target_system, count(*) FROM notes GROUP BY target_system
UNION ALL
SELECT NULL, count(*) FROM n
"""

Chunk = list[tuple[int, ImportLead, tuple[Any, ...]]]


def _staged(line: int, lead: ImportLead) -> tuple[Any, ...]:
    custom = msgspec.json.encode(lead.custom_fields).decode() if lead.custom_fields else None
    return (
        line,
        lead.email,
        lead.name,
        lead.company_name,
        lead.phone,
        lead.type.value,
        lead.source,
        lead.lead_score,
        lead.assigned_to,
        custom,
    )


def _next_chunk(
    good: Iterator[tuple[int, ImportLead]], size: int, progress: Callable[[int], None] | None
) -> Chunk:
    """Up to `size` validated rows, each with its staging row (run in a worker thread)."""
    chunk: Chunk = []
    for line, lead in itertools.islice(good, size):
        chunk.append((line, lead, _staged(line, lead)))
        if progress is not None and len(chunk) % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None:
        progress(len(chunk) % PROGRESS_EVERY)
    return chunk


class _Writer:
    """Stages one chunk of good rows with COPY and writes it with the one set-based insert."""

    def __init__(self, conn: AsyncConnection, actor: str, routes: tuple[Route, ...]) -> None:
        self.conn, self.actor, self.routes = conn, actor, routes
        self.now = utcnow()  # one import, one clock: every chunk's rows say the same time
        payload, params = _payload_sql(actor, self.now)
        self.sql = text(INSERT_ALL.format(payload=payload))
        self.params = {
            **params,
            **_routing(routes),
            "status": LeadStatus.NEW.value,
            "metadata": json.dumps({"importedBy": actor, "importDate": self.now.isoformat()}),
            "now": self.now,
            "note_type": NotificationType.NEW_LEAD.value,
            "pending": "PENDING",
            "actor": actor,
        }
        self.per_target: dict[str, int] = {}
        self.refused: list[RowError] = []  # rows the database refused (the fallback's report)

    async def start(self) -> None:
        await self.conn.execute(
            text(
                f"CREATE TEMPORARY TABLE {STAGING} (line int, email text, name text, "
                "company_name text, phone text, type text, source text, lead_score int, "
                "assigned_to text, custom_fields jsonb) ON COMMIT DROP"
            )
        )
        await self.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": IMPORT_LOCK})

    async def write(self, chunk: Chunk) -> tuple[int, int]:
        """(imported, already present) of one chunk."""
        driver = await _driver(self.conn)
        sql = f"COPY {STAGING} ({', '.join(_STAGED)}) FROM STDIN"
        async with driver.cursor() as cur, cur.copy(sql) as copy:
            for _, _, staged in chunk:
                await copy.write_row(staged)
        try:
            async with self.conn.begin_nested():
                imported, per_target = await self._insert()
        except sqlalchemy.exc.DBAPIError as exc:
            if isinstance(exc, DATABASE_UNAVAILABLE):
                raise
            # A row the database refuses (a constraint): find it the row-by-row way.
            written = ImportReport()
            writer = BatchWriter(self.conn, self.actor, self.routes, written)
            good = [(line, lead) for line, lead, _ in chunk]
            for start in range(0, len(good), BATCH_SIZE):
                await writer.write(good[start : start + BATCH_SIZE])
            self.refused += written.errors
            await self._empty()
            return written.imported, written.existing
        await self._empty()
        for target, n in per_target.items():
            self.per_target[target] = self.per_target.get(target, 0) + n
        return imported, len(chunk) - imported

    async def _empty(self) -> None:
        await self.conn.execute(text(f"TRUNCATE {STAGING}"))

    async def _insert(self) -> tuple[int, dict[str, int]]:
        """(leads written, outbox rows written per target)."""
        result = await self.conn.execute(self.sql, self.params)
        per_target: dict[str, int] = {}
        imported = 0
        for target, n in result:
            if target is None:
                imported = n
            else:
                per_target[target] = n
        return imported, per_target


async def copy_import_leads(
    conn: AsyncConnection,
    rows: Iterable[tuple[int, dict[str, str]]],
    actor: str,
    routes: Iterable[Route],
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import inside the caller's transaction, with the same report as csv_io's; on SQLite,
    csv_io's row-by-row path."""
    if conn.dialect.name != "postgresql":
        return await import_leads(conn, rows, actor, routes, progress=progress)
    report = ImportReport()
    fields = await list_fields(conn, CustomFieldEntity.LEAD)
    good = validated_rows(rows, fields, report, progress)
    chunk = await asyncio.to_thread(_next_chunk, good, FIRST_CHUNK, progress)
    if not chunk:
        return report
    # The import's statements grow with the file (each of the old path's batches stayed
    # within CRM_DB_TIMEOUT): a bound that fits a large file, still a bound. Sorting a chunk
    # (by line) in memory; no JIT: a chunk's statement is planned anew and compiling it costs
    # more than it saves.
    await conn.execute(text(f"SET LOCAL statement_timeout = '{IMPORT_STATEMENT_TIMEOUT}'"))
    await conn.execute(text(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'"))
    await conn.execute(text("SET LOCAL jit = off"))
    writer = _Writer(conn, actor, tuple(routes))
    await writer.start()
    size = FIRST_CHUNK
    while chunk:
        # The next chunk is read and validated on another core while this one is written.
        size = min(size * 2, MAX_CHUNK)
        following = asyncio.ensure_future(asyncio.to_thread(_next_chunk, good, size, progress))
        try:
            imported, existing = await writer.write(chunk)
        except BaseException:
            await asyncio.wait([following])  # the reader stops before the caller's file closes
            raise
        report.imported += imported
        report.existing += existing
        chunk = await following
    report.errors += writer.refused  # after the rows the checks refused, as before
    if writer.per_target:
        mark_outbox_written(conn)
        note_notifications(
            {"target_system": target, "type": NotificationType.NEW_LEAD.value}
            for target, n in writer.per_target.items()
            for _ in range(n)
        )
    return report
