"""/api/admin/customers: list, detail, edits audited and notified, lifecycle moves enforced,
deactivation ends the linked user's session; user <-> customer links everywhere."""

import uuid

import pytest

from tests.conftest import count, rows, total_rows
from tests.integration.admin_support import ADMIN_EMAIL, admin_client, sign_in


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def register(client, email="cus@tomer.example", password="customer-pw-1", name="Cus Tomer"):
    r = client.post("/api/auth/register", json={"name": name, "email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json()


def audit_and_outbox(engine):
    return (count(engine, "customer_audit"), count(engine, "crm_notifications"))


def test_list_filters_and_keyset_pages(admin, client, engine):
    for i in range(5):
        register(client, email=f"c{i}@shop.example", name=f"Name{i} Last")
    rfq = client.post(
        "/api/v1/rfq/submit",
        json={
            "email": "p@prospect.example",
            "companyName": "Acme Widgets",
            "lines": [{"sku": "S", "quantity": 1}],
        },
    )
    assert rfq.status_code == 201
    seen, cursor = [], None
    while True:
        page = admin.get(
            "/api/admin/customers", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [c["email"] for c in body["items"]]
        cursor = body["nextCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6
    prospects = admin.get("/api/admin/customers", params={"status": "PROSPECT"}).json()["items"]
    assert [c["email"] for c in prospects] == ["p@prospect.example"]
    assert prospects[0]["customerType"] == "RETAILER" and prospects[0]["source"] == "RFQ"
    found = admin.get("/api/admin/customers", params={"q": "acme"}).json()["items"]
    assert [c["email"] for c in found] == ["p@prospect.example"]
    by_email = admin.get("/api/admin/customers", params={"email": "C3@shop.example"}).json()
    assert [c["email"] for c in by_email["items"]] == ["c3@shop.example"]
    by_source = admin.get("/api/admin/customers", params={"source": "B2B_PLATFORM"}).json()
    assert len(by_source["items"]) == 5


def test_patch_is_audited_field_by_field_and_emits_customer_updated(admin, client, engine):
    reg = register(client)
    cid = reg["customerId"]
    r = admin.patch(
        f"/api/admin/customers/{cid}",
        json={
            "customerType": "WHOLESALER",
            "companyName": "Big Buyer",
            "phone": "+44 1",
            "firstName": "Cus",
            "industryType": "manufacturing",
            "employeeCount": "50-100",
            "annualRevenue": "5M-10M",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customerType"] == "WHOLESALER" and body["companyName"] == "Big Buyer"
    assert body["industryType"] == "manufacturing" and body["annualRevenue"] == "5M-10M"
    assert body["metadata"]["employeeCount"] == "50-100"
    assert body["metadata"]["registeredVia"] == "b2b-website"  # the rest of metadata kept
    audit = rows(
        engine, "SELECT actor, field, from_value, to_value FROM customer_audit ORDER BY id"
    )
    assert {a["field"] for a in audit} == {
        "customerType",
        "companyName",
        "phone",
        "industryType",
        "employeeCount",
        "annualRevenue",
    }  # firstName did not change
    assert all(a["actor"] == ADMIN_EMAIL for a in audit)
    assert {
        "field": "customerType",
        "from_value": "RETAILER",
        "to_value": "WHOLESALER",
    }.items() <= next(a for a in audit if a["field"] == "customerType").items()
    (note,) = rows(engine, "SELECT data FROM crm_notifications WHERE type = 'CUSTOMER_UPDATED'")
    assert note["data"]["customerId"] == cid and note["data"]["updatedBy"] == ADMIN_EMAIL
    assert note["data"]["changes"]["customerType"] == {"from": "RETAILER", "to": "WHOLESALER"}
    detail = admin.get(f"/api/admin/customers/{cid}").json()
    assert len(detail["history"]) == 6
    assert detail["user"]["email"] == "cus@tomer.example" and detail["user"]["isActive"] is True
    bad = admin.patch(f"/api/admin/customers/{cid}", json={"customerType": "RESELLER"})
    assert bad.status_code == 400 and bad.json()["field"] == "customerType"


def test_illegal_moves_are_409s_naming_the_allowed_ones_and_write_nothing(admin, client, engine):
    cid = register(client)["customerId"]
    assert admin.post(f"/api/admin/customers/{cid}/deactivate").status_code == 200
    before, audit = total_rows(engine), audit_and_outbox(engine)
    again = admin.post(f"/api/admin/customers/{cid}/deactivate")
    assert again.status_code == 409, again.text
    assert again.json()["field"] == "status" and "allowed: ACTIVE" in again.json()["detail"]
    to_prospect = admin.patch(
        f"/api/admin/customers/{cid}", json={"status": "PROSPECT", "companyName": "X"}
    )
    assert to_prospect.status_code == 409 and "allowed: ACTIVE" in to_prospect.json()["detail"]
    assert total_rows(engine) == before and audit_and_outbox(engine) == audit
    (row,) = rows(engine, "SELECT status, company_name FROM customers")
    assert row == {"status": "INACTIVE", "company_name": None}
    assert admin.post(f"/api/admin/customers/{cid}/reactivate").status_code == 200
    twice = admin.post(f"/api/admin/customers/{cid}/reactivate")
    assert twice.status_code == 409 and "allowed: INACTIVE" in twice.json()["detail"]
    missing = admin.post(f"/api/admin/customers/{uuid.uuid4()}/deactivate")
    assert missing.status_code == 404


def test_deactivation_ends_the_signed_in_customers_session_at_once(admin, make_client, engine):
    shopper = make_client()
    cid = register(shopper)["customerId"]
    sign_in(shopper, "cus@tomer.example", "customer-pw-1")
    assert shopper.get("/api/auth/me").status_code == 200
    r = admin.post(f"/api/admin/customers/{cid}/deactivate")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "INACTIVE"
    assert shopper.get("/api/auth/me").status_code == 401  # the very next request
    again = shopper.post(
        "/api/auth/login", json={"email": "cus@tomer.example", "password": "customer-pw-1"}
    )
    assert again.status_code == 401
    (note,) = rows(engine, "SELECT data FROM crm_notifications WHERE type = 'CUSTOMER_DEACTIVATED'")
    assert note["data"]["customerId"] == cid and note["data"]["userDeactivated"] is True
    assert admin.post(f"/api/admin/customers/{cid}/reactivate").status_code == 200
    sign_in(shopper, "cus@tomer.example", "customer-pw-1")  # the account works again


def test_cli_deactivates_a_staff_user_whose_session_then_ends(admin, make_client, settings, engine):
    from click.testing import CliRunner

    from crm_cli import main
    from tests.integration.admin_support import make_admin

    make_admin(settings, "rep@crm.example", "sales-pass-123")
    rep = sign_in(make_client(), "rep@crm.example", "sales-pass-123")
    assert rep.get("/api/admin/leads").status_code == 200
    result = CliRunner().invoke(
        main,
        ["users", "deactivate", "--email", "rep@crm.example"],
        env={"DATABASE_URL": settings.database_url},
    )
    assert result.exit_code == 0, result.output
    assert rep.get("/api/admin/leads").status_code == 401


def test_cli_deactivating_a_customer_user_deactivates_the_customer(client, settings, engine):
    from click.testing import CliRunner

    from crm_cli import main

    cid = register(client)["customerId"]
    result = CliRunner().invoke(
        main,
        ["users", "deactivate", "--email", "cus@tomer.example"],
        env={"DATABASE_URL": settings.database_url},
    )
    assert result.exit_code == 0, result.output
    (row,) = rows(engine, "SELECT status FROM customers")
    assert row["status"] == "INACTIVE"
    assert rows(engine, "SELECT is_active FROM users") == [{"is_active": False}]
    assert count(engine, "crm_notifications", "type = 'CUSTOMER_DEACTIVATED'") == 1
    assert count(engine, "customer_audit", "customer_id = :c AND field = 'status'", c=cid) == 1


def test_sales_role_works_customers_but_not_admin_settings(make_client, settings, engine):
    from tests.integration.admin_support import make_admin

    make_admin(settings, "sales@crm.example", "sales-pass-123")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE users SET role = 'sales' WHERE email = 'sales@crm.example'")
    sales = sign_in(make_client(), "sales@crm.example", "sales-pass-123")
    assert sales.get("/api/admin/customers").status_code == 200
    assert sales.get("/api/admin/quotes").status_code == 200  # staff price and answer quotes
    assert sales.get("/api/admin/custom-fields").status_code == 403
    assert sales.get("/api/admin/targets").status_code == 403


def test_customer_accounts_get_403(make_client):
    from tests.integration.admin_support import customer_client

    assert customer_client(make_client).get("/api/admin/customers").status_code == 403


def test_conversion_and_rfq_link_the_existing_user(admin, client, engine):
    user_id = register(client, email="buyer@x.example")["user"]["id"]
    with engine.begin() as conn:  # the signup's customer write "failed"
        conn.exec_driver_sql("DELETE FROM crm_notifications")
        conn.exec_driver_sql("DELETE FROM customers")
    rfq = client.post(
        "/api/v1/rfq/submit",
        json={"email": "buyer@x.example", "lines": [{"sku": "S", "quantity": 2}]},
    )
    assert rfq.status_code == 201, rfq.text
    (c,) = rows(engine, "SELECT id, external_id, status FROM customers")
    assert c["external_id"] == user_id and c["status"] == "PROSPECT"
    detail = admin.get(f"/api/admin/customers/{c['id']}").json()
    assert [q["reference"] for q in detail["quotes"]] == [rfq.json()["reference"]]
    assert detail["quotes"][0]["lines"] == 1 and detail["user"]["id"] == user_id

    user2 = register(client, email="lead@x.example")["user"]["id"]
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM customers WHERE email = 'lead@x.example'")
    lead = admin.post("/api/admin/leads", json={"email": "lead@x.example"}).json()
    for status in ("CONTACTED", "QUALIFIED"):
        admin.patch(f"/api/admin/leads/{lead['id']}", json={"status": status})
    conv = admin.post(f"/api/admin/leads/{lead['id']}/convert")
    assert conv.status_code == 200, conv.text
    (c2,) = rows(engine, "SELECT external_id FROM customers WHERE email = 'lead@x.example'")
    assert c2["external_id"] == user2
    shown = admin.get(f"/api/admin/customers/{conv.json()['customerId']}").json()
    assert [x["id"] for x in shown["leads"]] == [lead["id"]]


def test_repair_links_links_or_creates_the_missing_customers(client, settings, engine):
    from click.testing import CliRunner

    from crm_cli import main

    lost = register(client, email="lost@x.example")["user"]["id"]
    unlinked = register(client, email="unlinked@x.example")["user"]["id"]
    fine = register(client, email="fine@x.example")["user"]["id"]
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM customers WHERE email = 'lost@x.example'")
        conn.exec_driver_sql(
            "UPDATE customers SET external_id = NULL WHERE email = 'unlinked@x.example'"
        )
        conn.exec_driver_sql("DELETE FROM crm_notifications")
    env = {"DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(main, ["customers", "repair-links"], env=env)
    assert result.exit_code == 0, result.output
    assert (
        "created lost@x.example" in result.output and "linked unlinked@x.example" in result.output
    )
    assert "fine@x.example" not in result.output
    links = {
        r["email"]: r["external_id"]
        for r in rows(engine, "SELECT email, external_id FROM customers")
    }
    assert links == {"lost@x.example": lost, "unlinked@x.example": unlinked, "fine@x.example": fine}
    assert count(engine, "crm_notifications", "type = 'NEW_CUSTOMER'") == 2
    again = CliRunner().invoke(main, ["customers", "repair-links"], env=env)
    assert again.exit_code == 0 and "0 customer link(s) repaired" in again.output
