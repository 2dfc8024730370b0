"""CSV import and export of leads: `crm leads import/export`, `crm users create-admin`, and
the dashboard upload."""

import re

import pytest
from click.testing import CliRunner

from crm_cli import main
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


def test_export_neutralises_spreadsheet_formulas(cli, engine, tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text('email,name,phone\nevil@x.example,"=HYPERLINK(""http://x"")",+44 20 1\n')
    cli("leads", "import", str(f))
    (line,) = cli("leads", "export").stdout.splitlines()[1:]
    assert "'=HYPERLINK" in line and ",+44 20 1," in line


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
