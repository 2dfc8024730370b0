"""CSV import and export of leads.

Import validates every row, reports each bad one with its line number and reason (a NUL
character, invalid UTF-8, a field over the size limit, a value the rules or the database
refuse) and skips it. Good rows are written in batches of inserts, all in the caller's one
transaction, each batch in a savepoint: one bad row never aborts the file, and an import stopped
by a database failure writes nothing. Re-running a file is harmless: a lead with the same email
and source already exists and is left as it is.

Export neutralises every cell a spreadsheet would run as a formula (OWASP's rule); import takes
that neutralisation off again, so an exported file imports as it was.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Annotated, Any

import msgspec
import sqlalchemy.exc
from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.definitions import FieldDefinition, list_fields
from domain.custom_fields.values import CSV_PREFIX, InvalidCustomField, check_values, csv_cells
from domain.enums import CustomFieldEntity, LeadStatus, LeadType
from domain.intake.commands import Command, Email, Name, Phone
from domain.leads.audit import audit_rows
from domain.leads.lifecycle import Assignee, Score, new_lead_notifications
from domain.leads.queries import LeadFilters, LeadSort, LeadView, list_leads
from domain.models import LEAD_AUDIT, LEADS, NOTIFICATIONS, utcnow
from domain.outbox.rows import insert_all
from domain.rules import MANUAL_LEAD_SCORE, MANUAL_LEAD_SOURCE, Route
from infra.db import DATABASE_UNAVAILABLE, Database

BATCH_SIZE = 500
IMPORT_LOCK = 5_151_001  # serializes concurrent imports on PostgreSQL (advisory lock key)
SOURCE = msgspec.Meta(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.\-]+$")

# Accepted header names (case, spaces and underscores ignored) -> field of ImportLead.
COLUMNS = {
    "email": "email",
    "name": "name",
    "companyname": "companyName",
    "company": "companyName",
    "phone": "phone",
    "type": "type",
    "source": "source",
    "leadscore": "leadScore",
    "score": "leadScore",
    "assignedto": "assignedTo",
}
EXPORT_COLUMNS = [
    "id",
    "email",
    "name",
    "companyName",
    "phone",
    "type",
    "source",
    "status",
    "leadScore",
    "assignedTo",
    "createdAt",
    "convertedAt",
]


class ImportLead(Command):
    email: Email
    name: Name | None = None
    company_name: Name | None = None
    phone: Phone | None = None
    type: LeadType = LeadType.LEAD
    source: Annotated[str, SOURCE] = MANUAL_LEAD_SOURCE
    lead_score: Score = MANUAL_LEAD_SCORE
    assigned_to: Assignee | None = None
    custom_fields: dict[str, Any] | None = None  # from the cf.<key> columns, checked


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    existing: int = 0
    errors: list[RowError] = field(default_factory=list)


class BadFile(ValueError):
    """The file as a whole cannot be read (no header, no email column)."""


_AT = re.compile(r"^(.*) - at `\$\.(\w+)`$")
# What a spreadsheet runs as a formula when a cell starts with it (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


def _unneutralised(value: str) -> str:
    """A cell of our own export back to its value: `'+44 20 1` -> `+44 20 1`."""
    return value[1:] if value[:1] == "'" and value[1:2] in FORMULA_STARTS else value


def _check_characters(raw: dict[str, str]) -> None:
    """PostgreSQL text holds no NUL, and undecodable bytes are no text: the row is refused
    (naming the column, never echoing the value) rather than altered."""
    joined = "".join(raw.values())  # one look at the whole row first: most rows are clean
    if "\x00" not in joined and _UNDECODABLE.search(joined) is None:
        return
    for key, value in raw.items():
        column = COLUMNS.get(key, key)
        if "\x00" in value:
            raise ValueError(f"{column}: contains a NUL character")
        if _UNDECODABLE.search(value):
            raise ValueError(f"{column}: not valid UTF-8")


def parse_row(raw: dict[str, str]) -> ImportLead:
    """A validated lead from one CSV row; ValueError names the column and the reason."""
    _check_characters(raw)
    data = {
        COLUMNS[k]: _unneutralised(v.strip()).strip()
        for k, v in raw.items()
        if k in COLUMNS and v and v.strip()
    }
    if "email" not in data:
        raise ValueError("email: missing")
    try:
        return msgspec.convert(data, ImportLead, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        m = _AT.match(message)
        if m is None:
            raise ValueError(message) from exc
        reason, column = m.group(1), m.group(2)
        if "matching regex" in reason:
            reason = (
                "not a valid email address"
                if column == "email"
                else "has characters not allowed here"
            )
        raise ValueError(f"{column}: {reason}") from exc


def _header_key(header: str) -> str:
    """A column's key: `cf.<key>` keeps the custom field's own key; other names ignore case,
    spaces, `_` and `-`."""
    stripped = header.strip()
    if stripped[: len(CSV_PREFIX)].lower() == CSV_PREFIX:
        return CSV_PREFIX + stripped[len(CSV_PREFIX) :]
    return re.sub(r"[\s_\-]", "", stripped).lower()


def custom_cells(raw: dict[str, str], fields: list[FieldDefinition]) -> dict[str, Any] | None:
    """The checked custom field values of a row's `cf.<key>` cells (an empty cell is no
    value); ValueError names the column."""
    cells = {
        k[len(CSV_PREFIX) :]: _unneutralised(v.strip()).strip()
        for k, v in raw.items()
        if k.startswith(CSV_PREFIX)
    }
    try:
        checked = check_values(fields, cells, creating=True, from_text=True)
    except InvalidCustomField as exc:
        raise ValueError(exc.message.replace("customFields.", CSV_PREFIX, 1)) from exc
    values = {k: v for k, v in checked.items() if v is not None}
    return values or None


def read_csv(stream: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row keyed by normalized header) for every data row of a CSV file."""
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration as exc:
        raise BadFile("the file is empty (a header row with an email column is needed)") from exc
    keys = [_header_key(h) for h in header]
    if "email" not in keys:
        raise BadFile("the header has no email column")
    previous = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over csv.field_size_limit(): this row only
            line, previous = previous + 1, reader.line_num
            yield line, {"__error__": str(exc)}
            continue
        line, previous = previous + 1, reader.line_num  # a quoted value may span lines
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(keys):
            yield line, {"__error__": f"{len(values)} values for {len(keys)} columns"}
            continue
        yield line, dict(zip(keys, values, strict=False))


def _lead_row(lead: ImportLead, actor: str, now: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "email": lead.email,
        "name": lead.name,
        "company_name": lead.company_name,
        "phone": lead.phone,
        "type": lead.type,
        "source": lead.source,
        "status": LeadStatus.NEW,
        "lead_score": lead.lead_score,
        "assigned_to": lead.assigned_to,
        "metadata": {"importedBy": actor, "importDate": now.isoformat()},
        "created_at": now,
        "updated_at": now,
        "converted_at": None,
        "custom_fields": lead.custom_fields,
    }


async def _write_batch(
    conn: AsyncConnection, batch: list[tuple[int, ImportLead]], actor: str, routes: Iterable[Route]
) -> int:
    """Insert the leads of a batch that do not exist yet (same email and source)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": IMPORT_LOCK})
    pairs = {(lead.email, lead.source) for _, lead in batch}
    found = await conn.execute(
        select(LEADS.c.email, LEADS.c.source).where(
            tuple_(LEADS.c.email, LEADS.c.source).in_(list(pairs))
        )
    )
    existing = {(e, s) for e, s in found}
    now = utcnow()
    leads, notes, audit = [], [], []
    for _, lead in batch:
        if (lead.email, lead.source) in existing:
            continue
        row = _lead_row(lead, actor, now)
        leads.append(row)
        notes += new_lead_notifications(row, actor, now, routes)
        audit += audit_rows(
            row["id"],
            actor,
            now,
            "imported",
            {"status": (None, LeadStatus.NEW), "lead_score": (None, lead.lead_score)},
        )
    await insert_all(conn, [(LEADS, leads), (NOTIFICATIONS, notes), (LEAD_AUDIT, audit)])
    return len(leads)


def _reason(exc: sqlalchemy.exc.DBAPIError) -> str:
    """The server's one-line reason (never its DETAIL, which quotes the row's values)."""
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "message_primary", None) or type(exc.orig).__name__


class BatchWriter:
    """Writes validated leads in batches, each in a savepoint: a batch the database refuses is
    written again row by row, and each row it refuses is reported (the old path; also the
    COPY path's fallback when its one set-based insert is refused)."""

    def __init__(
        self,
        conn: AsyncConnection,
        actor: str,
        routes: Iterable[Route],
        report: ImportReport,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.conn, self.actor, self.routes = conn, actor, tuple(routes)
        self.report, self.progress = report, progress

    async def write(self, batch: list[tuple[int, ImportLead]]) -> None:
        if not batch:
            return
        try:
            async with self.conn.begin_nested():  # a savepoint: a refused batch undoes itself
                imported = await _write_batch(self.conn, batch, self.actor, self.routes)
            refused = 0
        except sqlalchemy.exc.DBAPIError as exc:
            if isinstance(exc, DATABASE_UNAVAILABLE):
                raise  # the database, not a row, failed: stop; the caller rolls back
            imported, refused = await self._write_each(batch)
        self.report.imported += imported
        self.report.existing += len(batch) - imported - refused
        if self.progress is not None:
            self.progress(len(batch))

    async def _write_each(self, batch: list[tuple[int, ImportLead]]) -> tuple[int, int]:
        """A batch the database refused: each row alone, reporting the ones it refuses."""
        imported = refused = 0
        for line, lead in batch:
            try:
                async with self.conn.begin_nested():
                    imported += await _write_batch(
                        self.conn, [(line, lead)], self.actor, self.routes
                    )
            except sqlalchemy.exc.DBAPIError as exc:
                if isinstance(exc, DATABASE_UNAVAILABLE):
                    raise
                self.report.errors.append(
                    RowError(line, f"refused by the database: {_reason(exc)}")
                )
                refused += 1
        return imported, refused


def validated_rows(
    rows: Iterable[tuple[int, dict[str, str]]],
    fields: list[FieldDefinition],
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, ImportLead]]:
    """The good rows of a file as leads, each once: every bad row and every repeat of an
    (email, source) pair already seen in the file goes to `report.errors` instead."""
    first_line: dict[tuple[str, str], int] = {}
    for line, raw in rows:
        report.rows += 1
        try:
            if "__error__" in raw:
                raise ValueError(raw["__error__"])
            lead = parse_row(raw)
            lead.custom_fields = custom_cells(raw, fields)
        except ValueError as exc:
            report.errors.append(RowError(line, str(exc)))
            if progress is not None:
                progress(1)
            continue
        key = (lead.email, lead.source)
        if key in first_line:
            report.errors.append(
                RowError(line, f"duplicate of line {first_line[key]} (same email and source)")
            )
            continue
        first_line[key] = line
        yield line, lead


async def import_leads(
    conn: AsyncConnection,
    rows: Iterable[tuple[int, dict[str, str]]],
    actor: str,
    routes: Iterable[Route],
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """The row-by-row path (SQLite; PostgreSQL uses domain.leads.csv_copy)."""
    fields = await list_fields(conn, CustomFieldEntity.LEAD)
    report = ImportReport()
    writer = BatchWriter(conn, actor, routes, report, progress)
    batch: list[tuple[int, ImportLead]] = []
    for item in validated_rows(rows, fields, report, progress):
        batch.append(item)
        if len(batch) >= batch_size:
            await writer.write(batch)
            batch = []
    await writer.write(batch)
    return report


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula: any text starting with
    `= + - @`, tab or carriage return gets a leading single quote (OWASP's rule; phone
    numbers such as `+44 20 1` included, since `-2+3+cmd|' /C calc'!A0` looks no different)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    s = str(getattr(value, "value", value))
    return "'" + s if s.startswith(FORMULA_STARTS) else s


def export_row(lead: LeadView, fields: Iterable[FieldDefinition] = ()) -> list[str]:
    custom = [_cell(v) for v in csv_cells(fields, lead.custom_fields).values()]
    return [
        _cell(v)
        for v in (
            lead.id,
            lead.email,
            lead.name,
            lead.company_name,
            lead.phone,
            lead.type,
            lead.source,
            lead.status,
            lead.lead_score,
            lead.assigned_to,
            lead.created_at,
            lead.converted_at,
        )
    ] + custom


async def export_leads(
    db: Database, filters: LeadFilters, sort: LeadSort = LeadSort.NEWEST, page_size: int = 1000
) -> AsyncIterator[list[str]]:
    """The header (EXPORT_COLUMNS, then `cf.<key>` per lead custom field), then the rows,
    page by page on the keyset index (constant memory)."""
    async with db.transaction() as conn:
        fields = await list_fields(conn, CustomFieldEntity.LEAD)
    yield EXPORT_COLUMNS + [f"{CSV_PREFIX}{f.key}" for f in fields]
    cursor: str | None = None
    while True:
        async with db.transaction() as conn:
            page = await list_leads(conn, filters, sort, page_size, cursor)
        for lead in page.items:
            yield export_row(lead, fields)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
