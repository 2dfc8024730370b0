"""CSV import and export of leads: `crm leads import/export`, `crm users create-admin`, and
the dashboard upload."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from crm_cli import main
from domain.enums import LeadStatus, LeadType
from domain.leads.csv_io import FORMULA_STARTS, export_row, parse_row
from domain.leads.queries import LeadView
from tests.conftest import count, rows
from tests.integration.admin_support import ADMIN_EMAIL, admin_client

GOOD_AND_BAD = """email,name,companyName,phone,type,source,leadScore,assignedTo
ann@acme.example,Ann Lee,Acme,+1 555 0100,QUOTE_REQUEST,trade_show,80,rep@crm.example
bob@globex.example,Bob Roy,Globex,,LEAD,,,
not-an-email,Bad Row,,,,,,
carl@initech.example,Carl,Initech,,WHALE,,,
dana@umbrella.example,Dana,,,,,101,
,No Email,,,,,,
ann@acme.example,Ann again,Acme,,QUOTE_REQUEST,trade_show,70,
ann@acme.example,Ann via referral,Acme,,LEAD,referral,65,
"""


@pytest.fixture
def cli(settings, engine):
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(
            main, list(args), env={"DATABASE_URL": settings.database_url}, input=input
        )

    return run


def test_import_reports_every_bad_row_with_its_line_and_imports_the_good_ones(
    cli, engine, tmp_path
):
    f = tmp_path / "leads.csv"
    f.write_text(GOOD_AND_BAD)
    result = cli("leads", "import", str(f), "--batch-size", "2")
    assert result.exit_code == 1, result.output
    errors = dict(re.findall(r"leads\.csv:(\d+): (.+)", result.stderr))
    assert set(errors) == {"4", "5", "6", "7", "8"}
    assert errors["4"] == "email: not a valid email address"
    assert errors["5"].startswith("type:")
    assert errors["6"].startswith("leadScore:")
    assert errors["7"] == "email: missing"
    assert errors["8"] == "duplicate of line 2 (same email and source)"
    assert "8 rows: 3 imported, 0 already present, 5 rejected" in result.stderr
    leads = {(r["email"], r["source"]): r for r in rows(engine, "SELECT * FROM leads")}
    assert set(leads) == {
        ("ann@acme.example", "trade_show"),
        ("bob@globex.example", "manual_import"),
        ("ann@acme.example", "referral"),
    }
    ann = leads[("ann@acme.example", "trade_show")]
    assert (ann["type"], ann["lead_score"], ann["assigned_to"], ann["status"]) == (
        "QUOTE_REQUEST",
        80,
        "rep@crm.example",
        "NEW",
    )
    assert leads[("bob@globex.example", "manual_import")]["lead_score"] == 60
    assert count(engine, "crm_notifications", "type = 'NEW_LEAD'") == 3
    assert count(engine, "lead_audit_entries", "action = 'imported' AND field = 'status'") == 3


# The one NEW_LEAD payload shape (domain.leads.lifecycle.new_lead_notifications).
NEW_LEAD_KEYS = {
    "leadId",
    "email",
    "name",
    "companyName",
    "phone",
    "type",
    "source",
    "status",
    "leadScore",
    "assignedTo",
    "customFields",
    "event",
    "createdBy",
    "createdAt",
}


def test_new_lead_payload_has_one_shape_by_hand_and_by_import(
    cli, make_client, settings, engine, tmp_path
):
    admin = admin_client(make_client, settings)
    by_hand = {"email": "hand@x.example", "assignedTo": "rep@crm.example"}
    assert admin.post("/api/admin/leads", json=by_hand).status_code == 201
    f = tmp_path / "one.csv"
    f.write_text("email,assignedTo,leadScore\ncsv@x.example,rep@crm.example,75\n")
    result = cli("leads", "import", str(f), "--actor", "importer@crm.example")
    assert result.exit_code == 0, result.output
    payloads = {
        r["data"]["email"]: r["data"]
        for r in rows(engine, "SELECT data FROM crm_notifications WHERE type = 'NEW_LEAD'")
    }
    assert set(payloads["hand@x.example"]) == NEW_LEAD_KEYS
    assert set(payloads["csv@x.example"]) == NEW_LEAD_KEYS
    imported = payloads["csv@x.example"]
    assert (imported["status"], imported["assignedTo"], imported["leadScore"]) == (
        "NEW",
        "rep@crm.example",
        75,
    )
    assert imported["createdBy"] == "importer@crm.example"
    assert payloads["hand@x.example"]["createdBy"] == ADMIN_EMAIL


def test_import_rerun_is_idempotent(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text(GOOD_AND_BAD)
    cli("leads", "import", str(f))
    again = cli("leads", "import", str(f))
    assert "8 rows: 0 imported, 3 already present, 5 rejected" in again.stderr
    assert count(engine, "leads") == 3 and count(engine, "crm_notifications") == 3


def test_import_of_a_file_without_email_column_is_refused(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text("name,phone\nAnn,1\n")
    result = cli("leads", "import", str(f))
    assert result.exit_code == 1 and "no email column" in result.output
    assert count(engine, "leads") == 0


def test_export_writes_the_filtered_leads_as_csv(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text(GOOD_AND_BAD)
    cli("leads", "import", str(f))
    result = cli("leads", "export", "--min-score", "65", "--sort", "score")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("id,email,name,companyName,phone,type,source,status,leadScore")
    assert [line.split(",")[1] for line in lines[1:]] == ["ann@acme.example", "ann@acme.example"]
    assert [line.split(",")[6] for line in lines[1:]] == ["trade_show", "referral"]
    everyone = cli("leads", "export").stdout.splitlines()
    assert len(everyone) == 4


def test_export_then_import_round_trips(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text(GOOD_AND_BAD)
    cli("leads", "import", str(f))
    exported = tmp_path / "export.csv"
    exported.write_text(cli("leads", "export").stdout)
    again = cli("leads", "import", str(exported))
    assert "3 rows: 0 imported, 3 already present, 0 rejected" in again.stderr
    assert again.exit_code == 0


FORMULAS = {  # name -> what a spreadsheet would otherwise run
    '=HYPERLINK("http://x")': "=",
    "-2+3+cmd|' /C calc'!A0": "-",
    '+HYPERLINK("http://x","y")': "+",
    "@SUM(1+1)*cmd|' /C calc'!A0": "@",
}


def test_export_neutralises_every_cell_a_spreadsheet_would_run(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    with f.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "phone"])
        writer.writerows([f"f{i}@x.example", name, "+44 20 1"] for i, name in enumerate(FORMULAS))
    assert cli("leads", "import", str(f)).exit_code == 0
    exported = list(csv.reader(io.StringIO(cli("leads", "export").stdout)))[1:]
    assert sorted(row[2] for row in exported) == sorted("'" + name for name in FORMULAS)
    assert {row[4] for row in exported} == {"'+44 20 1"}  # a phone number too: OWASP's rule
    for row in exported:  # and nothing else starts like a formula
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row


def _lead_view(name: str) -> LeadView:
    now = datetime.now(UTC)
    return LeadView(
        uuid.uuid4(),
        "a@b.example",
        name,
        None,
        None,
        LeadType.LEAD,
        "manual_import",
        LeadStatus.NEW,
        60,
        None,
        None,
        now,
        now,
        None,
        [],
    )


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_a_cell_starting_like_a_formula_gets_a_quote_that_import_takes_off(value):
    assert export_row(_lead_view(value))[2] == "'" + value
    assert parse_row({"email": "a@b.example", "name": "'" + value}).name == value.strip()


def test_exported_formulas_import_back_as_their_values(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text("email,name,phone\nevil@x.example,\"-2+3+cmd|' /C calc'!A0\",+44 20 1\n")
    cli("leads", "import", str(f))
    exported = tmp_path / "export.csv"
    exported.write_text(cli("leads", "export").stdout)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE leads, crm_notifications, lead_audit_entries CASCADE"))
    assert cli("leads", "import", str(exported)).exit_code == 0
    (lead,) = rows(engine, "SELECT name, phone FROM leads")
    assert (lead["name"], lead["phone"]) == ("-2+3+cmd|' /C calc'!A0", "+44 20 1")


BAD_BYTES = (
    b"email,name,assignedTo\n"
    b"ok1@x.example,Ann,\n"
    b"nul@x.example,Nul,rep\x00@crm.example\n"
    b"long@x.example," + b"x" * 200_000 + b",\n"
    b"utf@x.example,Bad \xff\xfe bytes,\n"
    b"ok2@x.example,Bob,\n"
)


def test_import_skips_nul_oversized_and_undecodable_rows_and_reports_each(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_bytes(BAD_BYTES)
    result = cli("leads", "import", str(f))
    assert result.exit_code == 1, result.output
    errors = dict(re.findall(r"leads\.csv:(\d+): (.+)", result.stderr))
    assert errors == {
        "3": "assignedTo: contains a NUL character",
        "4": "field larger than field limit (131072)",
        "5": "name: not valid UTF-8",
    }
    assert "5 rows: 2 imported, 0 already present, 3 rejected" in result.stderr
    assert {r["email"] for r in rows(engine, "SELECT email FROM leads")} == {
        "ok1@x.example",
        "ok2@x.example",
    }


def test_a_row_the_database_refuses_is_reported_and_the_others_imported(cli, engine, tmp_path):
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE leads ADD CONSTRAINT no_mallory CHECK (name <> 'Mallory')"))
    try:
        f = tmp_path / "leads.csv"
        f.write_text("email,name\na@x.example,Ann\nm@x.example,Mallory\nb@x.example,Bob\n")
        result = cli("leads", "import", str(f), "--batch-size", "10")
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE leads DROP CONSTRAINT no_mallory"))
    assert result.exit_code == 1, result.output
    (reason,) = re.findall(r"leads\.csv:3: (.+)", result.stderr)
    assert reason.startswith("refused by the database: ") and "no_mallory" in reason
    assert "3 rows: 2 imported, 0 already present, 1 rejected" in result.stderr
    assert count(engine, "leads") == 2 and count(engine, "crm_notifications") == 2


def test_create_admin_reads_the_password_from_stdin_and_can_sign_in(cli, engine, make_client):
    result = cli("users", "create-admin", "--email", "Chief@CRM.example", input="s3cret-pass!\n")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    (user,) = rows(engine, "SELECT email, role, password_hash FROM users")
    assert (user["email"], user["role"]) == ("chief@crm.example", "admin")
    assert user["password_hash"].startswith("$argon2id$")
    r = make_client().post(
        "/api/auth/login", json={"email": "chief@crm.example", "password": "s3cret-pass!"}
    )
    assert r.status_code == 200 and r.json()["user"]["role"] == "admin"
    again = cli("users", "create-admin", "--email", "chief@crm.example", input="other-pass-1\n")
    assert again.exit_code == 1 and "already exists" in again.output
    short = cli("users", "create-admin", "--email", "x@crm.example", input="short\n")
    assert short.exit_code == 1 and "password" in short.output
    assert count(engine, "users") == 1


def test_dashboard_upload_imports_and_lists_bad_rows(make_client, settings, engine):
    admin = admin_client(make_client, settings)
    page = admin.get("/admin/crm-sync")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    r = admin.post(
        "/admin/crm-sync/leads/import",
        files={"file": ("leads.csv", GOOD_AND_BAD.encode(), "text/csv")},
        data={"_csrf_token": token},
    )
    assert r.status_code == 200, r.text
    assert "Imported" in r.text and "duplicate of line 2" in r.text
    assert count(engine, "leads") == 3
    no_token = admin.post(
        "/admin/crm-sync/leads/import",
        files={"file": ("leads.csv", GOOD_AND_BAD.encode(), "text/csv")},
        headers={"x-csrftoken": ""},
    )
    assert no_token.status_code == 403 and count(engine, "leads") == 3


def test_dashboard_upload_lists_nul_and_oversized_rows_and_imports_the_rest(
    make_client, settings, engine
):
    admin = admin_client(make_client, settings)
    page = admin.get("/admin/crm-sync")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    r = admin.post(
        "/admin/crm-sync/leads/import",
        files={"file": ("leads.csv", BAD_BYTES, "text/csv")},
        data={"_csrf_token": token},
    )
    assert r.status_code == 200, r.text
    assert "assignedTo: contains a NUL character" in r.text
    assert "field larger than field limit" in r.text
    assert count(engine, "leads", "email LIKE 'ok_@x.example'") == 2
