"""The COPY path of the leads CSV (domain.leads.csv_copy) against the row-by-row path
(domain.leads.csv_io) on the same file: the same bad-row report, the same leads, NEW_LEAD
outbox rows and audit entries; the COPY export byte for byte the paged export."""

import csv
import io
import uuid
from typing import Any

from sqlalchemy import text

from domain.custom_fields.definitions import CreateField, create_field
from domain.enums import CustomFieldEntity, CustomFieldType, NotificationPriority, NotificationType
from domain.leads import csv_copy
from domain.leads.csv_copy import copy_import_leads, export_csv
from domain.leads.csv_io import FORMULA_STARTS, ImportReport, export_leads, import_leads, read_csv
from domain.leads.queries import LeadFilters, LeadSort
from domain.rules import Route
from infra.db import Database, with_database
from tests.conftest import count, rows

ROUTES = (  # routing by score matters: HIGH-only and other-type-only targets too
    Route("ALL"),
    Route("HOT", min_priority=NotificationPriority.HIGH),
    Route("NORMAL_UP", min_priority=NotificationPriority.NORMAL),
    Route("QUOTES_ONLY", events=frozenset({NotificationType.QUOTE_REQUEST})),
)

MIXED = (
    b"email,name,companyName,phone,type,source,leadScore,assignedTo,cf.seats,cf.region\n"
    b"ann@acme.example,Ann Lee,Acme,+1 555 0100,QUOTE_REQUEST,trade_show,80,rep@crm.example,3,north\n"
    b"bob@globex.example,Bob Roy,Globex,,LEAD,,,,,\n"
    b"not-an-email,Bad Row,,,,,,,,\n"
    b"carl@initech.example,Carl,Initech,,WHALE,,,,,\n"
    b"dana@umbrella.example,Dana,,,,,101,,,\n"
    b",No Email,,,,,,,,\n"
    b"ann@acme.example,Ann again,Acme,,QUOTE_REQUEST,trade_show,70,,,\n"
    b"ann@acme.example,Ann via referral,Acme,,LEAD,referral,65,,2.5,south\n"
    b"nul@x.example,Nul,,,,,,rep\x00@crm.example,,\n"
    b"long@x.example," + b"x" * 200_000 + b",,,,,,,,\n"
    b"utf@x.example,Bad \xff\xfe bytes,,,,,,,,\n"
    b"seats@x.example,Seats,,,,,,,many,\n"
    b"region@x.example,Region,,,,,,,,west\n"
    b'evil@x.example,"\'=HYPERLINK(""http://x"")",,\'+44 20 1,,,30,,,\n'
    b"old@x.example,Already here,,,,web,45,,,\n"
    b'zed@x.example,"Zed, ""quoted""\nover two lines",,,CONTACT_REQUEST,,15,,,\n'
)
ALREADY_THERE = b"email,source,leadScore\nold@x.example,web,45\n"


def _rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    stream = io.StringIO(data.decode("utf-8-sig", errors="surrogateescape"), newline="")
    return list(read_csv(stream))


def _import(settings: Any, data: bytes, fast: bool) -> ImportReport:
    async def work(db: Database) -> ImportReport:
        async with db.transaction() as conn:
            if fast:
                return await copy_import_leads(conn, _rows(data), "importer", ROUTES)
            return await import_leads(conn, _rows(data), "importer", ROUTES, batch_size=3)

    return with_database(settings, work)


def _define_fields(settings: Any) -> None:
    async def work(db: Database) -> None:
        async with db.transaction() as conn:
            await create_field(
                conn,
                CreateField(
                    entity=CustomFieldEntity.LEAD,
                    key="seats",
                    label="S",
                    type=CustomFieldType.NUMBER,
                ),
            )
            await create_field(
                conn,
                CreateField(
                    entity=CustomFieldEntity.LEAD,
                    key="region",
                    label="R",
                    type=CustomFieldType.SELECT,
                    options=["north", "south"],
                ),
            )

    with_database(settings, work)


def _snapshot(engine: Any) -> dict[str, list[Any]]:
    """Everything an import wrote, without what differs by nature (ids, clocks)."""
    leads = rows(engine, "SELECT * FROM leads")
    key = {r["id"]: (r["email"], r["source"]) for r in leads}
    for r in leads:
        r["metadata"] = {k: v for k, v in (r["metadata"] or {}).items() if k != "importDate"}
        for volatile in ("id", "created_at", "updated_at"):
            del r[volatile]
    notes = rows(engine, "SELECT * FROM crm_notifications")
    for n in notes:
        n["lead"] = key[uuid.UUID(n["data"].pop("leadId"))]
        n["data"].pop("createdAt")
        for volatile in ("id", "created_at", "next_attempt_at"):
            del n[volatile]
    audit = rows(engine, "SELECT * FROM lead_audit_entries")
    for a in audit:
        a["lead"] = key[a.pop("lead_id")]
        del a["id"], a["at"]
    return {
        name: sorted(items, key=repr)
        for name, items in (("leads", leads), ("notes", notes), ("audit", audit))
    }


def _truncate(engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE leads, crm_notifications, lead_audit_entries CASCADE"))


def _both_paths(settings, engine):  # type: ignore[no-untyped-def]
    """MIXED imported by the row-by-row path, then (tables emptied) by the COPY path, each over
    the same lead already there: both reports, and the rows each path left."""
    _define_fields(settings)
    _import(settings, ALREADY_THERE, fast=False)
    old = _import(settings, MIXED, fast=False)
    old_rows = _snapshot(engine)
    _truncate(engine)
    _import(settings, ALREADY_THERE, fast=False)
    new = _import(settings, MIXED, fast=True)
    return old, new, old_rows, _snapshot(engine)


def test_copy_import_reports_and_writes_exactly_what_the_row_by_row_path_does(settings, engine):
    old, new, old_rows, new_rows = _both_paths(settings, engine)
    assert new == old
    assert (new.rows, new.imported, new.existing) == (16, 5, 1)
    assert len(new.errors) == 10  # the bad rows: every reason the old path knows
    assert new_rows == old_rows
    assert count(engine, "crm_notifications", "target_system = 'HOT'") == 1  # score 80 only
    assert count(engine, "crm_notifications", "target_system = 'QUOTES_ONLY'") == 0


def test_a_row_the_database_refuses_falls_back_to_the_row_by_row_report(settings, engine):
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE leads ADD CONSTRAINT no_mallory CHECK (name <> 'Mallory')"))
    try:
        data = b"email,name\na@x.example,Ann\nm@x.example,Mallory\nb@x.example,Bob\n"
        report = _import(settings, data, fast=True)
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE leads DROP CONSTRAINT no_mallory"))
    assert [e.line for e in report.errors] == [3]
    assert "no_mallory" in report.errors[0].reason
    assert (report.imported, count(engine, "crm_notifications", "target_system = 'ALL'")) == (2, 2)


def test_a_file_over_several_chunks_is_imported_as_the_row_by_row_path_does(
    settings, engine, monkeypatch
):
    # chunks of 2, 3, 3...: a repeat of a row in an earlier chunk, a lead already there
    monkeypatch.setattr(csv_copy, "FIRST_CHUNK", 2)
    monkeypatch.setattr(csv_copy, "MAX_CHUNK", 3)
    old, new, old_rows, new_rows = _both_paths(settings, engine)
    assert new == old
    assert new_rows == old_rows


def test_a_row_refused_in_a_later_chunk_is_reported_after_the_bad_rows(
    settings, engine, monkeypatch
):
    monkeypatch.setattr(csv_copy, "FIRST_CHUNK", 2)
    monkeypatch.setattr(csv_copy, "MAX_CHUNK", 2)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE leads ADD CONSTRAINT no_mallory CHECK (name <> 'Mallory')"))
    try:
        data = (
            b"email,name,leadScore\n"
            b"a@x.example,Ann,50\n"  # chunk 1
            b"not-an-email,Bad,\n"
            b"b@x.example,Bob,90\n"  # chunk 1
            b"c@x.example,Carl,\n"  # chunk 2
            b"m@x.example,Mallory,\n"  # chunk 2: refused by the database
            b"d@x.example,Dana,999\n"
            b"e@x.example,Eve,\n"  # chunk 3
        )
        report = _import(settings, data, fast=True)
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE leads DROP CONSTRAINT no_mallory"))
    assert [e.line for e in report.errors] == [3, 7, 6]
    assert "no_mallory" in report.errors[2].reason
    assert (report.rows, report.imported, report.existing) == (7, 4, 0)
    assert count(engine, "leads") == 4
    assert count(engine, "crm_notifications", "target_system = 'ALL'") == 4
    assert count(engine, "crm_notifications", "target_system = 'HOT'") == 1  # Bob's 90
    assert count(engine, "lead_audit_entries") == 8


def _export(settings: Any, filters: LeadFilters, sort: LeadSort, fast: bool) -> str:
    async def work(db: Database) -> str:
        if fast:
            out = io.BytesIO()
            async with db.transaction() as conn:
                await export_csv(conn, filters, sort, out)
            return out.getvalue().decode()
        text_out = io.StringIO()
        writer = csv.writer(text_out, lineterminator="\n")
        async for row in export_leads(db, filters, sort):
            writer.writerow(row)
        return text_out.getvalue()

    return with_database(settings, work)


def test_copy_export_is_the_paged_export_byte_for_byte_formulas_neutralised(settings, engine):
    _define_fields(settings)
    _import(settings, MIXED, fast=True)
    with engine.begin() as conn:  # a conversion time, and a zero fraction of a second
        conn.execute(
            text("UPDATE leads SET converted_at = '2026-01-02 03:04:05+00' WHERE source = 'web'")
        )
    for filters, sort in (
        (LeadFilters(), LeadSort.NEWEST),
        (LeadFilters(min_score=40), LeadSort.SCORE),
        (LeadFilters(source="trade_show", custom={"region": "north"}), LeadSort.NEWEST),
    ):
        fast = _export(settings, filters, sort, fast=True)
        assert fast == _export(settings, filters, sort, fast=False)
    exported = list(
        csv.reader(io.StringIO(_export(settings, LeadFilters(), LeadSort.NEWEST, True)))
    )
    cells = [cell for row in exported[1:] for cell in row]
    assert '\'=HYPERLINK("http://x")' in cells and "'+44 20 1" in cells
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)


def test_a_big_file_imports_fully(settings, engine):
    lines = ["email,name,leadScore,cf.seats"] + [
        f"user{i}@big.example,User {i},{i % 101},{i % 7}" for i in range(20_000)
    ]
    _define_fields(settings)
    report = _import(settings, ("\n".join(lines) + "\n").encode(), fast=True)
    assert (report.rows, report.imported, report.errors) == (20_000, 20_000, [])
    assert count(engine, "leads") == 20_000
    assert count(engine, "lead_audit_entries") == 40_000
    # each lead's trail reads as audit_rows wrote it: status first, then lead_score
    assert count(engine, "lead_audit_entries s JOIN lead_audit_entries l USING (lead_id)",
                 "s.field = 'status' AND l.field = 'lead_score' AND s.id < l.id") == 20_000  # fmt: skip
    assert count(engine, "crm_notifications", "target_system = 'ALL'") == 20_000
    assert count(engine, "crm_notifications", "target_system = 'HOT'") == count(
        engine, "leads", "lead_score >= 80"
    )
