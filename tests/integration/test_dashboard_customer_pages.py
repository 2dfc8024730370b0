"""The Customers tab and the customer page: list rows link to the page, which shows the linked
user, leads, quotes and audit trail; edits and deactivation go through CSRF-protected forms."""

import re
import uuid

import pytest

from tests.conftest import count, rows
from tests.integration.admin_support import admin_client
from tests.integration.page_support import (
    customer_page_client,
    notice,
    sales_client,
    submit,
    token_of,
)


@pytest.fixture
def admin(make_client, settings, engine):
    return admin_client(make_client, settings)


def customer_id(engine, email="cus@tomer.example"):
    (row,) = rows(engine, "SELECT id FROM customers WHERE email = :e", e=email)
    return str(row["id"])


def test_customers_tab_links_each_row_to_its_page(admin, make_client, engine):
    customer = customer_page_client(make_client)
    cid = customer_id(engine)
    tab = admin.get("/admin/customers")
    assert tab.status_code == 200, tab.text
    assert re.findall(r'href="(/admin/customers/[^"]+)" data-link="customer"', tab.text) == [
        f"/admin/customers/{cid}"
    ]
    page = admin.get(f"/admin/customers/{cid}")
    assert page.status_code == 200
    assert "cus@tomer.example" in page.text and "data-user>cus@tomer.example" in page.text
    assert (
        admin.get("/admin/customers", params={"status": "INACTIVE"}).text.count(
            'data-link="customer"'
        )
        == 0
    )
    assert customer.get(f"/admin/customers/{cid}").status_code == 403
    assert customer.get("/admin/customers").status_code == 403


def test_sales_see_customers_and_an_unknown_one_is_404(admin, make_client, settings, engine):
    customer_page_client(make_client)
    sales = sales_client(make_client, settings, engine)
    assert sales.get(f"/admin/customers/{customer_id(engine)}").status_code == 200
    assert sales.get("/admin/customers").status_code == 200
    missing = sales.get(f"/admin/customers/{uuid.uuid4()}")
    assert missing.status_code == 404 and "no customer with id" in missing.text


def test_deactivate_ends_the_customers_session_and_reactivate_restores(admin, make_client, engine):
    customer = customer_page_client(make_client)
    assert customer.get("/api/v1/quotes").status_code == 200
    cid = customer_id(engine)
    page = f"/admin/customers/{cid}"
    token = token_of(admin, page)
    assert submit(admin, f"{page}/deactivate", None).status_code == 403
    assert (
        rows(engine, "SELECT status FROM customers WHERE id = :i", i=cid)[0]["status"] == "ACTIVE"
    )

    r = submit(admin, f"{page}/deactivate", token)
    assert (r.status_code, r.headers["location"]) == (303, page)
    (row,) = rows(
        engine,
        "SELECT c.status, u.is_active FROM customers c JOIN users u ON u.email = c.email"
        " WHERE c.id = :i",
        i=cid,
    )
    assert (row["status"], row["is_active"]) == ("INACTIVE", False)
    assert count(engine, "crm_notifications", "type = 'CUSTOMER_DEACTIVATED'") > 0
    assert customer.get("/api/v1/quotes").status_code == 401
    after = admin.get(page).text
    assert "is deactivated" in notice(after) and 'data-action="reactivate"' in after

    assert submit(admin, f"{page}/reactivate", token).status_code == 303
    assert (
        rows(engine, "SELECT status FROM customers WHERE id = :i", i=cid)[0]["status"] == "ACTIVE"
    )


def test_edit_type_and_enrichment_is_audited(admin, make_client, engine):
    customer_page_client(make_client)
    cid = customer_id(engine)
    page = f"/admin/customers/{cid}"
    token = token_of(admin, page)
    form = {
        "customer_type": "DISTRIBUTOR",
        "status": "ACTIVE",
        "first_name": "Cus",
        "last_name": "Tomer",
        "industry_type": "Hardware",
        "employee_count": "50-100",
    }
    assert submit(admin, f"{page}/edit", None, **form).status_code == 403
    r = submit(admin, f"{page}/edit", token, **form)
    assert r.status_code == 303
    (row,) = rows(engine, "SELECT customer_type, metadata FROM customers WHERE id = :i", i=cid)
    assert row["customer_type"] == "DISTRIBUTOR"
    assert (row["metadata"]["industryType"], row["metadata"]["employeeCount"]) == (
        "Hardware",
        "50-100",
    )
    fields = {
        r["field"]
        for r in rows(engine, "SELECT field FROM customer_audit WHERE customer_id = :i", i=cid)
    }
    assert {"customerType", "industryType", "employeeCount"} <= fields
    shown = admin.get(page).text
    assert "Hardware" in shown and 'data-table="history"' in shown
    # An illegal move (ACTIVE -> PROSPECT) comes back as a notice and writes nothing.
    audit = count(engine, "customer_audit")
    bad = submit(admin, f"{page}/edit", token, **{**form, "status": "PROSPECT"})
    assert (bad.status_code, bad.headers["location"]) == (303, page)
    assert count(engine, "customer_audit") == audit
    assert "cannot move" in notice(admin.get(page).text)
