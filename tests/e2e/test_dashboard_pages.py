"""The dashboard's record and settings pages in headless Chromium (Playwright): sign in, open
each page from the list that links to it, do one thing on each, check the page and the
database, and keep screenshots (in $CRM_SHOTS_DIR or the temp dir) for a human to look at."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright
from standardwebhooks.webhooks import Webhook

from domain.accounts.users import create_admin
from infra.db import Database, with_database
from infra.settings import Settings
from tests.conftest import REDIS_URL, rows
from tests.e2e.harness import Receiver
from tests.e2e.test_api_dashboard import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port

SHOTS = Path(os.environ.get("CRM_SHOTS_DIR") or tempfile.gettempdir()) / "crm-dashboard-pages"
ADMIN, PASSWORD = "pages.admin@crm.example", "dashboard-pw-77"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def server(pg_url: str, engine, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": pg_url,
        "CRM_SECRET_KEY": uuid.uuid4().hex,
        "CRM_EGRESS_ALLOW": "127.0.0.1/32",
        "CRM_GUARD_REDIS_URL": f"{REDIS_URL}/1",
    }
    log = (tmp_path / "uvicorn.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.1)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def seed(base: str, pg_url: str, receiver_url: str) -> str:
    """An admin, a customer account, a quote-request form (a lead), an RFQ (customer, quote) and a registry destination
    made through the JSON API; answers the destination's first secret."""

    async def admin(db: Database) -> None:
        async with db.transaction() as conn:
            await create_admin(conn, ADMIN, PASSWORD, "Pat Pages")

    with_database(Settings(database_url=pg_url), admin)
    reg = httpx.post(
        f"{base}/api/auth/register",
        json={"name": "Cora Customer", "email": "cora@shop.example", "password": "cora-pass-123"},
    )
    assert reg.status_code == 201, reg.text
    form = httpx.post(
        f"{base}/api/forms/submit",
        json={"formType": "quote_request", "email": "buyer@acme.example", "name": "Grace Hopper",
              "companyName": "Acme"},
    )  # fmt: skip
    assert form.status_code == 201, form.text
    rfq = httpx.post(
        f"{base}/api/v1/rfq/submit",
        json={
            "email": "buyer@acme.example",
            "name": "Grace Hopper",
            "companyName": "Acme",
            "message": "Monthly supply, please.",
            "lines": [{"sku": "RICE-50KG", "quantity": 40, "unit": "bag"}, {"sku": "OIL-5L", "quantity": 12}],
        },
    )  # fmt: skip
    assert rfq.status_code == 201, rfq.text
    with httpx.Client(base_url=base) as api:
        login = api.post("/api/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert login.status_code == 200, login.text
        api.headers["x-csrftoken"] = login.json()["csrfToken"]
        made = api.post(
            "/api/admin/targets",
            json={"name": "PARTNER_HUB", "kind": "webhook", "url": receiver_url},
        )
        assert made.status_code == 201, made.text
        return str(made.json()["secret"])


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def notice(page: Page, text: str) -> None:
    expect(page.locator(".notice")).to_contain_text(text)


def test_staff_work_every_record_page_in_the_browser(server, engine, pg_url, receiver):
    first_secret = seed(server, pg_url, receiver.url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(10_000)
        page.on("dialog", lambda d: d.accept())

        page.goto(f"{server}/admin/login")
        page.fill('input[name="email"]', ADMIN)
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        expect(page.locator("h1")).to_have_text("CRM Sync")
        expect(page.locator('[data-insight="averageScore"] .score')).to_be_visible()
        expect(page.locator('[data-insight="conversionBySource"] tbody tr')).not_to_have_count(0)
        shot(page, "0-overview")

        # Lead page, from its row in the leads tab: move it NEW -> CONTACTED.
        page.locator('tr[data-lead="buyer@acme.example"] a[data-link="lead"]').click()
        expect(page.locator("h1")).to_have_text("Grace Hopper")
        page.locator('form[data-action="move"] select').select_option("CONTACTED")
        page.locator('form[data-action="move"] button').click()
        notice(page, "buyer@acme.example is now CONTACTED")
        expect(page.locator("[data-status]")).to_have_text("CONTACTED")
        expect(page.locator('table[data-table="history"]')).to_contain_text("CONTACTED")
        expect(page.locator('table[data-table="lead-notifications"] tbody tr')).not_to_have_count(0)
        shot(page, "1-lead")
        (lead,) = rows(engine, "SELECT status FROM leads WHERE email = 'buyer@acme.example'")
        assert lead["status"] == "CONTACTED"

        # Customers tab -> the registered customer's page: deactivate.
        page.click('a[data-nav="customers"]')
        expect(page.locator('table[data-table="customers"] tbody tr')).to_have_count(2)
        page.locator('tr[data-customer="cora@shop.example"] a[data-link="customer"]').click()
        expect(page.locator("[data-user]")).to_contain_text("cora@shop.example")
        page.locator('form[data-action="deactivate"] button').click()
        notice(page, "cora@shop.example is deactivated")
        expect(page.locator("[data-status] .badge")).to_have_text("Inactive")
        shot(page, "2-customer")
        (cust,) = rows(
            engine,
            "SELECT c.status, u.is_active FROM customers c JOIN users u ON u.email = c.email"
            " WHERE c.email = 'cora@shop.example'",
        )
        assert (cust["status"], cust["is_active"]) == ("INACTIVE", False)

        # Quotes tab -> the RFQ's quote: price both lines, then reply in the thread.
        page.click('a[data-nav="quotes"]')
        page.locator('table[data-table="quotes"] a[data-link="quote"]').first.click()
        prices = page.locator('form[data-action="price"] input.price')
        expect(prices).to_have_count(2)
        prices.nth(0).fill("12.50")
        prices.nth(1).fill("30")
        page.fill('input[name="currency"]', "NGN")
        page.fill('input[name="valid_until"]', (date.today() + timedelta(days=14)).isoformat())
        page.locator('form[data-action="price"] button[type="submit"]').click()
        notice(page, "priced: 860.00 NGN")
        expect(page.locator("[data-total]")).to_have_text("860.00 NGN")
        expect(page.locator(".head-badges .badge")).to_have_text("Quoted")
        page.fill('form[data-action="reply"] textarea', "Delivery within two weeks of your order.")
        page.locator('form[data-action="reply"] button').click()
        notice(page, "Reply sent")
        expect(page.locator('[data-message="SALES"]')).to_contain_text("Delivery within two weeks")
        shot(page, "3-quote")
        (quote,) = rows(engine, "SELECT status, currency FROM quotes")
        assert (quote["status"], quote["currency"]) == ("QUOTED", "NGN")

        # Custom fields: define a select field for leads.
        page.click('a[data-nav="fields"]')
        form = page.locator('form[data-action="create-field"]')
        form.locator('select[name="entity"]').select_option("lead")
        form.locator('input[name="key"]').fill("budgetBand")
        form.locator('input[name="label"]').fill("Budget band")
        form.locator('select[name="type"]').select_option("select")
        form.locator('input[name="options"]').fill("small, medium, large")
        form.locator("button").click()
        notice(page, "field budgetBand (select) created")
        expect(page.locator('tr[data-field="lead.budgetBand"]')).to_contain_text(
            "small, medium, large"
        )
        shot(page, "4-custom-fields")

        # Destinations: test, disable with a reason, enable, rotate (secret shown once).
        page.click('a[data-nav="destinations"]')
        row = page.locator('tr[data-destination="PARTNER_HUB"]')
        expect(row.locator("[data-source]")).to_have_text("api")
        row.locator('button[data-do="test"]').click()
        notice(page, "Test PING to PARTNER_HUB: HTTP 200 in")
        (ping,) = receiver.deliveries
        Webhook(first_secret).verify(ping.body, ping.headers)
        row = page.locator('tr[data-destination="PARTNER_HUB"]')
        row.locator('input[name="reason"]').fill("partner maintenance")
        row.locator('button[data-do="disable"]').click()
        notice(page, "PARTNER_HUB is disabled (partner maintenance)")
        expect(page.locator('tr[data-destination="PARTNER_HUB"] [data-enabled]')).to_contain_text(
            "partner maintenance"
        )
        shot(page, "5-destination-disabled")
        page.locator('tr[data-destination="PARTNER_HUB"] button[data-do="enable"]').click()
        notice(page, "PARTNER_HUB is enabled")
        page.locator('tr[data-destination="PARTNER_HUB"] button[data-do="rotate"]').click()
        secret = page.locator("[data-secret]").inner_text().strip()
        assert secret.startswith("whsec_") and secret != first_secret
        shot(page, "6-destination-rotated")
        page.goto(f"{server}/admin/destinations")
        expect(page.locator("h1")).to_have_text("Destinations")
        assert secret not in page.content()
        expect(page.locator("[data-secret]")).to_have_count(0)
        # The new secret signs the next test ping.
        page.locator('tr[data-destination="PARTNER_HUB"] button[data-do="test"]').click()
        notice(page, "HTTP 200")
        Webhook(secret).verify(receiver.deliveries[-1].body, receiver.deliveries[-1].headers)
        shot(page, "7-destinations")
        browser.close()
    for name in (
        "0-overview",
        "1-lead",
        "2-customer",
        "3-quote",
        "4-custom-fields",
        "7-destinations",
    ):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
