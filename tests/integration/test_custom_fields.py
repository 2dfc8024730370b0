"""Custom CRM fields: definitions (admin only), values checked on every write for every type
(400 naming customFields.<key>, nothing written), cf.<key> filters, CSV round trip, forms,
notification data."""

import pytest

from tests.conftest import count, rows, total_rows
from tests.integration.admin_support import admin_client

FIELDS = [
    {
        "entity": "lead",
        "key": "region",
        "label": "Region",
        "type": "select",
        "options": ["north", "south"],
    },
    {"entity": "lead", "key": "seats", "label": "Seats", "type": "number"},
    {"entity": "lead", "key": "vip", "label": "VIP", "type": "boolean"},
    {"entity": "lead", "key": "renewal", "label": "Renewal", "type": "date"},
    {"entity": "lead", "key": "note", "label": "Note", "type": "text"},
    {
        "entity": "customer",
        "key": "tier",
        "label": "Tier",
        "type": "select",
        "options": ["gold", "silver"],
        "required": True,
    },
    {"entity": "customer", "key": "accountCode", "label": "Account code", "type": "text"},
]


@pytest.fixture
def admin(make_client, settings, engine):
    client = admin_client(make_client, settings)
    for field in FIELDS:
        r = client.post("/api/admin/custom-fields", json=field)
        assert r.status_code == 201, r.text
    return client


def new_lead(admin, email, **custom):
    r = admin.post("/api/admin/leads", json={"email": email, "customFields": custom})
    assert r.status_code == 201, r.text
    return r.json()


def test_definitions_are_managed_by_admins(admin):
    listed = admin.get("/api/admin/custom-fields", params={"entity": "customer"}).json()
    assert [f["key"] for f in listed] == ["accountCode", "tier"]
    dup = admin.post("/api/admin/custom-fields", json=FIELDS[0])
    assert dup.status_code == 409 and dup.json()["field"] == "key"
    no_options = admin.post(
        "/api/admin/custom-fields",
        json={"entity": "lead", "key": "kind", "label": "Kind", "type": "select"},
    )
    assert no_options.status_code == 400
    bad_key = admin.post(
        "/api/admin/custom-fields",
        json={"entity": "lead", "key": "has space", "label": "X", "type": "text"},
    )
    assert bad_key.status_code == 400 and bad_key.json()["field"] == "key"
    region = next(f for f in admin.get("/api/admin/custom-fields").json() if f["key"] == "region")
    changed = admin.patch(
        f"/api/admin/custom-fields/{region['id']}", json={"options": ["north", "south", "east"]}
    )
    assert changed.status_code == 200 and changed.json()["options"][-1] == "east"
    lead = new_lead(admin, "e@x.io", region="east", seats=3)
    assert admin.delete(f"/api/admin/custom-fields/{region['id']}").status_code == 204
    after = admin.get(f"/api/admin/leads/{lead['id']}").json()
    assert after["customFields"] == {"seats": 3}  # the deleted field's values went with it


@pytest.mark.parametrize(
    ("key", "bad", "good", "stored"),
    [
        ("note", 12, "  call after 5 ", "call after 5"),
        ("seats", "many", 12.0, 12),
        ("seats", True, 2.5, 2.5),
        ("vip", "yes", True, True),
        ("renewal", "2026-13-01", "2026-02-03", "2026-02-03"),
        ("renewal", 20260203, "2026-02-03T10:00:00Z", "2026-02-03"),
        ("region", "west", "south", "south"),
        ("nosuch", "x", None, None),
    ],
)
def test_every_type_is_checked_on_lead_writes(admin, engine, key, bad, good, stored):
    lead = new_lead(admin, "v@x.io")
    before = total_rows(engine), count(engine, "lead_audit_entries")
    for r in (
        admin.patch(f"/api/admin/leads/{lead['id']}", json={"customFields": {key: bad}}),
        admin.post("/api/admin/leads", json={"email": "w@x.io", "customFields": {key: bad}}),
    ):
        assert r.status_code == 400, r.text
        assert r.json()["field"] == f"customFields.{key}"
    assert (total_rows(engine), count(engine, "lead_audit_entries")) == before
    if good is None:
        return
    ok = admin.patch(f"/api/admin/leads/{lead['id']}", json={"customFields": {key: good}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["customFields"] == {key: stored}
    (audit,) = rows(
        engine, "SELECT to_value FROM lead_audit_entries WHERE field = :f", f=f"cf.{key}"
    )
    assert audit["to_value"] is not None


def test_required_customer_field_and_customer_values(admin, client, engine):
    reg = client.post(
        "/api/auth/register",
        json={"name": "C Us", "email": "c@x.io", "password": "customer-pw-1"},
    )
    cid = reg.json()["customerId"]
    wrong = admin.patch(f"/api/admin/customers/{cid}", json={"customFields": {"tier": "bronze"}})
    assert wrong.status_code == 400 and wrong.json()["field"] == "customFields.tier"
    ok = admin.patch(
        f"/api/admin/customers/{cid}", json={"customFields": {"tier": "gold", "accountCode": "A1"}}
    )
    assert ok.status_code == 200 and ok.json()["customFields"] == {
        "tier": "gold",
        "accountCode": "A1",
    }
    cleared = admin.patch(f"/api/admin/customers/{cid}", json={"customFields": {"tier": None}})
    assert cleared.status_code == 400 and cleared.json()["field"] == "customFields.tier"
    (note,) = rows(engine, "SELECT data FROM crm_notifications WHERE type = 'CUSTOMER_UPDATED'")
    assert note["data"]["customFields"] == {"tier": "gold", "accountCode": "A1"}
    assert note["data"]["changes"]["customFields.tier"] == {"from": None, "to": "gold"}
    found = admin.get("/api/admin/customers", params={"cf.tier": "gold"}).json()["items"]
    assert [c["id"] for c in found] == [cid]
    assert admin.get("/api/admin/customers", params={"cf.tier": "silver"}).json()["items"] == []


def test_cf_filters_on_the_lead_list(admin):
    a = new_lead(admin, "a@x.io", region="north", seats=5, vip=True, renewal="2026-01-02")
    b = new_lead(admin, "b@x.io", region="south", seats=5, vip=False)
    new_lead(admin, "c@x.io")

    def ids(**params):
        r = admin.get("/api/admin/leads", params=params)
        assert r.status_code == 200, r.text
        return {lead["id"] for lead in r.json()["items"]}

    assert ids(**{"cf.region": "north"}) == {a["id"]}
    assert ids(**{"cf.seats": "5"}) == {a["id"], b["id"]}
    assert ids(**{"cf.seats": "5", "cf.vip": "false"}) == {b["id"]}
    assert ids(**{"cf.vip": "true"}) == {a["id"]}
    assert ids(**{"cf.renewal": "2026-01-02"}) == {a["id"]}
    unknown = admin.get("/api/admin/leads", params={"cf.nosuch": "1"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "cf.nosuch"
    bad = admin.get("/api/admin/leads", params={"cf.seats": "lots"})
    assert bad.status_code == 400 and bad.json()["field"] == "cf.seats"


def test_csv_export_then_import_keeps_the_custom_fields(admin, settings, engine, tmp_path):
    from click.testing import CliRunner

    from crm_cli import main

    values = {
        "x@x.io": {
            "region": "north",
            "seats": 7,
            "vip": True,
            "renewal": "2026-05-06",
            "note": "=1+2 not a formula",
        },
        "y@x.io": {"seats": 2.5, "vip": False},
        "z@x.io": {},
    }
    for email, custom in values.items():
        new_lead(admin, email, **custom)
    env = {"DATABASE_URL": settings.database_url}
    exported = CliRunner().invoke(main, ["leads", "export"], env=env)
    assert exported.exit_code == 0, exported.output
    csv_text = exported.stdout
    header = csv_text.splitlines()[0].split(",")
    assert header[-5:] == ["cf.note", "cf.region", "cf.renewal", "cf.seats", "cf.vip"]
    assert "'=1+2 not a formula" in csv_text  # neutralised in the file
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE leads CASCADE")
    f = tmp_path / "leads.csv"
    f.write_text(csv_text)
    imported = CliRunner().invoke(main, ["leads", "import", str(f)], env=env)
    assert imported.exit_code == 0, imported.output
    back = {
        r["email"]: r["custom_fields"] or {}
        for r in rows(engine, "SELECT email, custom_fields FROM leads")
    }
    assert back == values
    f.write_text("email,cf.seats,cf.nosuch\nq@x.io,many,\nr@x.io,1,2\n")
    bad = CliRunner().invoke(main, ["leads", "import", str(f)], env=env)
    assert bad.exit_code == 1
    assert ":2: cf.seats: must be a number" in bad.output
    assert ":3: cf.nosuch: is not a defined custom field" in bad.output


def test_forms_may_post_lead_custom_fields(admin, client, engine):
    form = {
        "formType": "contact_us",
        "email": "f@x.io",
        "customFields": {"region": "south", "seats": "3"},
    }
    refused = client.post("/api/forms/submit", json=form)
    assert refused.status_code == 400 and refused.json()["field"] == "customFields.seats"
    assert count(engine, "form_submissions") == 0
    form["customFields"]["seats"] = 3
    r = client.post("/api/forms/submit", json=form)
    assert r.status_code == 201, r.text
    (lead,) = rows(engine, "SELECT custom_fields FROM leads")
    assert lead["custom_fields"] == {"region": "south", "seats": 3}
    (note,) = rows(engine, "SELECT data FROM crm_notifications WHERE type = 'NEW_FORM_SUBMISSION'")
    assert note["data"]["customFields"] == {"region": "south", "seats": 3}
    keyed = client.post(
        "/api/forms/submit",
        json={**form, "email": "g@x.io", "customFields": {"vip": "no"}},
        headers={"Idempotency-Key": "cf-1"},
    )
    assert keyed.status_code == 400 and keyed.json()["field"] == "customFields.vip"


def test_sales_cannot_define_fields(make_client, settings, engine):
    from tests.integration.admin_support import make_admin, sign_in

    make_admin(settings, "s@crm.example", "sales-pass-123")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET role = 'sales' WHERE email = 's@crm.example'")
    sales = sign_in(make_client(), "s@crm.example", "sales-pass-123")
    r = sales.post("/api/admin/custom-fields", json=FIELDS[1])
    assert r.status_code == 403
