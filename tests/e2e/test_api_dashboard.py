"""The admin dashboard in a real browser: headless Chromium (Debian's) driven by Playwright,
against the real app served by uvicorn on the test PostgreSQL database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from domain.accounts.users import create_admin
from infra.db import Database, with_database
from infra.settings import Settings
from tests.conftest import count, rows

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN, PASSWORD = "sales.lead@crm.example", "dashboard-pw-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(pg_url: str, engine, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": pg_url,
        "CRM_SECRET_KEY": uuid.uuid4().hex,
    }
    log = (tmp_path / "uvicorn.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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


def seed(base: str, engine, pg_url: str) -> dict[str, str]:
    """Data through the public API, plus a qualified lead and a dead-lettered notification."""
    for form_type, email, name in [
        ("quote_request", "buyer@acme.example", "Grace Hopper"),
        ("contact_us", "ops@globex.example", "Alan Turing"),
        ("partnership_inquiry", "bd@initech.example", "Katherine Johnson"),
    ]:
        r = httpx.post(
            f"{base}/api/forms/submit",
            json={
                "formType": form_type,
                "email": email,
                "name": name,
                "companyName": email.split("@")[1].split(".")[0].title(),
            },
        )
        assert r.status_code == 201, r.text
    for email in ("reader1@news.example", "reader2@news.example"):
        assert (
            httpx.post(f"{base}/api/newsletter-subscribe", json={"email": email}).status_code == 201
        )
    qualified, failed = str(uuid.uuid4()), str(uuid.uuid4())
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO leads (id, email, name, company_name, type, source, status, lead_score) "
            "VALUES (%(id)s, 'cto@umbrella.example', 'Ada Lovelace', 'Umbrella', 'LEAD', "
            "'referral', 'QUALIFIED', 85)",
            {"id": qualified},
        )
        conn.exec_driver_sql(
            "INSERT INTO crm_notifications (id, type, target_system, priority, data, read, status, "
            "attempts, last_error, failed_at) VALUES (%(id)s, 'NEW_LEAD', 'SALESFORCE', 'HIGH', "
            "'{\"email\": \"lost@deal.example\"}', false, 'FAILED', 28, 'HTTP 503', now())",
            {"id": failed},
        )
        conn.exec_driver_sql(
            "INSERT INTO crm_notification_attempts (notification_id, target_system, attempt_number, "
            "started_at, duration_ms, http_status, error) VALUES (%(id)s, 'SALESFORCE', 28, now(), "
            "31.5, 503, NULL)",
            {"id": failed},
        )

    async def admin(db: Database) -> None:
        async with db.transaction() as conn:
            await create_admin(conn, ADMIN, PASSWORD, "Sam Sales")

    with_database(Settings(database_url=pg_url), admin)
    return {"qualified": qualified, "failed": failed}


def stat(page: Page, name: str) -> str:
    return page.locator(f'[data-stat="{name}"] .value').inner_text().strip()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_admin_works_the_pipeline_in_the_browser(server: str, engine, pg_url: str):
    ids = seed(server, engine, pg_url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(10_000)

        # No session: the page answers 401 with the sign-in form.
        response = page.goto(f"{server}/admin/crm-sync")
        assert response is not None and response.status == 401
        shot(page, "0-login")
        page.fill('input[name="email"]', ADMIN)
        page.fill('input[name="password"]', "not-the-password")
        page.click('button[type="submit"]')
        expect(page.locator(".notice.error")).to_contain_text("Wrong email or password")
        page.fill('input[name="password"]', PASSWORD)
        page.click('button[type="submit"]')
        expect(page.locator("h1")).to_have_text("CRM Sync")

        # Stat cards match the data: 6 leads (3 forms, 2 newsletter, 1 referral), 3 forms,
        # 2 subscribers, 6 unread notifications (5 written by the API, 1 failed), 0 converted.
        assert (count(engine, "leads"), count(engine, "crm_notifications", "read = false")) == (
            6,
            6,
        )
        assert stat(page, "totalLeads") == "6"
        assert stat(page, "totalForms") == "3"
        assert stat(page, "totalSubscribers") == "2"
        assert stat(page, "unreadNotifications") == "6"
        assert stat(page, "conversionRate") == "0.00%"
        today = datetime.now(UTC).strftime("%d %b")
        expect(page.locator("svg.chart title").last).to_contain_text("6 new leads")
        assert today in page.locator("svg.chart").inner_html()
        expect(page.locator('[data-stage="total"] .funnel-num b')).to_have_text("6")
        shot(page, "1-leads")

        # Change a lead's status: NEW -> CONTACTED.
        row = page.locator('tr[data-lead="ops@globex.example"]')
        row.locator('select[name="status"]').select_option("CONTACTED")
        row.locator('button:has-text("Move")').click()
        expect(page.locator(".notice.ok")).to_contain_text("ops@globex.example is now CONTACTED")
        expect(
            page.locator('tr[data-lead="ops@globex.example"] .badge.s-contacted')
        ).to_be_visible()
        (lead,) = rows(engine, "SELECT status FROM leads WHERE email = 'ops@globex.example'")
        assert lead["status"] == "CONTACTED"
        assert (
            count(engine, "lead_audit_entries", "actor = :a AND to_value = 'CONTACTED'", a=ADMIN)
            == 1
        )

        # Assign it to a sales rep.
        row = page.locator('tr[data-lead="ops@globex.example"]')
        row.locator('input[name="assigned_to"]').fill("rep@crm.example")
        row.locator('button:has-text("Assign")').click()
        expect(page.locator(".notice.ok")).to_contain_text("assigned to rep@crm.example")

        # Convert the qualified lead: a customer appears, the rate moves to 1/6.
        page.locator('tr[data-lead="cto@umbrella.example"] button:has-text("Convert")').click()
        expect(page.locator(".notice.ok")).to_contain_text("converted to a new customer")
        assert stat(page, "conversionRate") == "16.67%"
        (customer,) = rows(engine, "SELECT first_name, last_name, source, metadata FROM customers")
        assert (customer["first_name"], customer["last_name"], customer["source"]) == (
            "Ada",
            "Lovelace",
            "LEAD_CONVERSION",
        )
        assert customer["metadata"]["convertedFromLeadId"] == ids["qualified"]
        expect(page.locator('[data-stage="converted"] .funnel-num b')).to_have_text("1")

        # Filters: only QUOTE_REQUEST leads.
        page.select_option('select[name="type"]', "QUOTE_REQUEST")
        page.click('button:has-text("Apply")')
        expect(page.locator('table[data-table="leads"] tbody tr')).to_have_count(1)
        expect(page.locator('tr[data-lead="buyer@acme.example"]')).to_be_visible()

        page.click('a[data-tab="forms"]')
        expect(page.locator('table[data-table="forms"] tbody tr')).to_have_count(3)
        shot(page, "2-forms")

        page.click('a[data-tab="subscribers"]')
        expect(page.locator('table[data-table="subscribers"] tbody tr')).to_have_count(2)
        shot(page, "3-subscribers")

        # Replay the dead-lettered notification, then see its delivery attempts.
        page.click('a[data-tab="notifications"]')
        failed_row = page.locator(f'tr[data-notification="{ids["failed"]}"]')
        expect(failed_row.locator(".badge.s-failed")).to_be_visible()
        shot(page, "4-notifications")
        failed_row.locator('button:has-text("Replay")').click()
        expect(page.locator(".notice.ok")).to_contain_text("queued again")
        expect(
            page.locator(f'tr[data-notification="{ids["failed"]}"] .badge.s-pending')
        ).to_be_visible()
        (note,) = rows(
            engine,
            "SELECT status, attempts, counted_attempts FROM crm_notifications WHERE id = :i",
            i=ids["failed"],
        )
        # A fresh budget; attempt numbers carry on from the 28 already made.
        assert (note["status"], note["attempts"], note["counted_attempts"]) == ("PENDING", 28, 0)
        page.locator(f'tr[data-notification="{ids["failed"]}"] a:has-text("Attempts")').click()
        expect(page.locator("table tbody tr")).to_have_count(1)
        expect(page.locator("table tbody")).to_contain_text("503")
        shot(page, "5-attempts")

        assert "{&#34;" not in page.content() and '{"' not in page.inner_text("body")
        browser.close()
    for name in ("0-login", "1-leads", "2-forms", "3-subscribers", "4-notifications", "5-attempts"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
