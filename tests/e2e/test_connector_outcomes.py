"""What a real worker makes of each connector answer: delivered, failed for good, disabled, paused.

Each test runs a real `crm worker` (and beat) against real PostgreSQL and Redis, with a registry
destination of a connector kind pointed at a loopback fake of the vendor (tests/fakes/). The
connectors themselves are tested directly in tests/integration/test_connectors_*.py; these
tests prove the dispatcher records each `Sent` (outcome, pause, disable) as it says.
"""

from __future__ import annotations

import time
from itertools import count
from typing import Any

from api import directory
from tests.conftest import rows
from tests.e2e.harness import wait_for
from tests.fakes import hubspot, salesforce
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.salesforce import FakeSalesforce
from tests.fakes.server import Request, Response
from tests.fakes.slack import FakeSlack
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in

KEY = "a-long-enough-secret-key-for-the-tests-0123456789"
PUBLIC_URL = "https://crm.example.test"
QUIET = 2.0  # seconds a fake must see nothing while its destination waits
_n = count()


def _admin(make_stack, name: str, **target: Any):
    """A worker, beat and a signed-in admin; the destination `name` created through the API."""
    stack = make_stack(CRM_SECRET_KEY=KEY, CRM_PUBLIC_URL=PUBLIC_URL)
    stack.worker()
    stack.beat()
    make_admin(stack.settings)
    admin = sign_in(stack.client(), ADMIN_EMAIL, ADMIN_PASSWORD)
    r = admin.post("/api/admin/targets", json={"name": name, **target})
    assert r.status_code == 201, r.text
    wait_for(lambda: name in {x.target for x in directory.routes(admin.app.state)}, 5, "routed")
    return admin


def _lead(admin, score: int) -> tuple[str, str]:
    """(email, lead id) of a lead made in the dashboard: score 90 is HIGH, 60 NORMAL."""
    email = f"lead{next(_n)}-{time.monotonic_ns()}@x.io"
    r = admin.post(
        "/api/admin/leads",
        json={"email": email, "leadScore": score, "name": "Ada Lovelace", "companyName": "ACME"},
    )
    assert r.status_code == 201, r.text
    return email, str(r.json()["id"])


def _rows(engine, target: str) -> dict[str, dict[str, Any]]:
    """The target's notifications by the lead's email."""
    found = rows(
        engine,
        "SELECT id, status, read, attempts, counted_attempts, last_error, priority,"
        " data->>'email' AS email FROM crm_notifications WHERE target_system = :t",
        t=target,
    )
    return {r["email"]: r for r in found}


def _row(engine, target: str, email: str) -> dict[str, Any] | None:
    return _rows(engine, target).get(email)


def _attempts(engine, notification_id) -> list[dict[str, Any]]:
    return rows(
        engine,
        "SELECT * FROM crm_notification_attempts WHERE notification_id = :i ORDER BY attempt_number",
        i=notification_id,
    )


def _status(engine, target: str, email: str, status: str) -> dict[str, Any] | None:
    row = _row(engine, target, email)
    return row if row is not None and str(row["status"]) == status else None


def _quiet(condition, seconds: float = QUIET) -> None:
    """`condition` holds the whole time (an absence can only be watched over a window)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition()
        time.sleep(0.05)


def test_slack_gets_high_leads_as_blocks_with_the_dashboard_link_and_never_normal_ones(
    make_stack, engine
):
    slack = FakeSlack().start()
    try:
        admin = _admin(make_stack, "SLACK", kind="slack", url=slack.webhook_url)
        high, lead_id = _lead(admin, 90)
        normal, _ = _lead(admin, 60)
        row = wait_for(lambda: _status(engine, "SLACK", high, "DELIVERED"), 15, "delivered")
        assert row["read"] and row["priority"] == "HIGH"
        (attempt,) = _attempts(engine, row["id"])
        assert attempt["http_status"] == 200 and attempt["error"] is None
        (message,) = slack.messages()
        link = f"{PUBLIC_URL}/admin/leads/{lead_id}"
        assert link in str(message["blocks"]) and high in str(message["blocks"])
        assert "Ada Lovelace" in message["text"]
        # minPriority HIGH by default for slack: the NORMAL lead has no row there at all.
        assert normal not in _rows(engine, "SLACK")
        assert rows(engine, "SELECT 1 FROM crm_notifications WHERE data->>'email' = :e", e=normal)
    finally:
        slack.stop()


def test_slack_channel_not_found_fails_the_row_for_good_after_one_attempt(make_stack, engine):
    slack = FakeSlack()
    slack.error = "channel_not_found"
    slack.start()
    try:
        admin = _admin(make_stack, "SLACK", kind="slack", url=slack.webhook_url)
        email, _ = _lead(admin, 90)
        row = wait_for(lambda: _status(engine, "SLACK", email, "FAILED"), 15, "failed")
        (attempt,) = _attempts(engine, row["id"])
        assert attempt["http_status"] == 404 and "channel_not_found" in attempt["error"]
        assert "channel_not_found" in row["last_error"] and not row["read"]
        assert row["attempts"] == 1
        # Not retried (CRM_RETRY_SCHEDULE is 0.3 s here), and the destination stays enabled.
        _quiet(lambda: len(slack.messages()) == 1, 1.0)
        view = admin.get("/api/admin/targets/SLACK").json()
        assert view["enabled"] is True and view["disabledReason"] is None
    finally:
        slack.stop()


def test_slack_channel_is_archived_disables_the_destination_and_later_rows_wait(make_stack, engine):
    slack = FakeSlack()
    slack.error = "channel_is_archived"
    slack.start()
    try:
        admin = _admin(make_stack, "SLACK", kind="slack", url=slack.webhook_url)
        first, _ = _lead(admin, 90)
        row = wait_for(lambda: _status(engine, "SLACK", first, "FAILED"), 15, "failed")
        assert "channel_is_archived" in _attempts(engine, row["id"])[0]["error"]
        (state,) = wait_for(
            lambda: rows(
                engine,
                "SELECT * FROM crm_target_state WHERE name = 'SLACK'"
                " AND disabled_reason IS NOT NULL",
            ),
            5,
            "the destination disabled",
        )
        view = admin.get("/api/admin/targets/SLACK").json()
        assert view["enabled"] is False and view["disabledReason"] == state["disabled_reason"]
        later, _ = _lead(admin, 90)
        wait_for(lambda: _row(engine, "SLACK", later), 5, "the later row")
        _quiet(
            lambda: (
                len(slack.messages()) == 1
                and (r := _row(engine, "SLACK", later)) is not None
                and str(r["status"]) == "PENDING"
                and not r["read"]
                and r["attempts"] == 0
            )
        )
    finally:
        slack.stop()


class LimitedSalesforce(FakeSalesforce):
    """REQUEST_LIMIT_EXCEEDED with a short Retry-After while `limit_exceeded` (the connector
    honours one; without it the destination would wait its default 5 minutes)."""

    retry_after = "3"

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if response.status == 403:
            response.headers["Retry-After"] = self.retry_after
        return response


def test_salesforce_request_limit_pauses_the_destination_without_using_up_attempts(
    make_stack, engine
):
    sf = LimitedSalesforce()
    sf.limit_exceeded = True
    sf.start()
    try:
        admin = _admin(
            make_stack,
            "SALESFORCE",
            kind="salesforce",
            url=sf.url,
            credentials={
                "clientId": salesforce.CLIENT_ID,
                "clientSecret": salesforce.CLIENT_SECRET,
            },
        )
        first, _ = _lead(admin, 60)

        def retried():
            r = _row(engine, "SALESFORCE", first)
            return r if r is not None and r["attempts"] == 1 else None

        row = wait_for(retried, 15, "the first attempt recorded")
        answered_at = time.monotonic()
        assert str(row["status"]) == "PENDING" and not row["read"]
        assert row["counted_attempts"] == 0  # a pause does not use up the retry budget
        assert "REQUEST_LIMIT_EXCEEDED" in row["last_error"]
        (attempt,) = _attempts(engine, row["id"])
        assert attempt["http_status"] == 403
        # While paused: nothing reaches the org, not even a new lead's row, which is due now.
        calls = len(sf.upserts())
        assert calls == 1
        second, _ = _lead(admin, 60)
        _quiet(lambda: len(sf.upserts()) == calls, QUIET - (time.monotonic() - answered_at))
        sf.limit_exceeded = False
        for email in (first, second):
            wait_for(lambda e=email: _status(engine, "SALESFORCE", e, "DELIVERED"), 15, email)
        assert time.monotonic() - answered_at >= 2.5  # not before the pause ended
        assert {lead["Email"] for lead in sf.leads.values()} == {first, second}
        assert _row(engine, "SALESFORCE", first)["counted_attempts"] == 1
    finally:
        sf.stop()


def test_salesforce_field_error_fails_that_record_for_good_on_a_200_answer(make_stack, engine):
    sf = FakeSalesforce().start()
    try:
        admin = _admin(
            make_stack,
            "SALESFORCE",
            kind="salesforce",
            url=sf.url,
            credentials={
                "clientId": salesforce.CLIENT_ID,
                "clientSecret": salesforce.CLIENT_SECRET,
            },
            # Email mapped from the lead's name: "Ada Lovelace" is no email address.
            options={"mapping": {"email": None, "name": "Email"}},
        )
        email, _ = _lead(admin, 60)
        row = wait_for(lambda: _status(engine, "SALESFORCE", email, "FAILED"), 15, "failed")
        (attempt,) = _attempts(engine, row["id"])
        assert attempt["http_status"] == 200 and "INVALID_EMAIL_ADDRESS" in attempt["error"]
        _quiet(lambda: len(sf.upserts()) == 1, 1.0)
    finally:
        sf.stop()


def test_hubspot_upserts_a_form_submission_lead_and_records_it_delivered(make_stack, engine):
    hs = FakeHubSpot().start()
    try:
        admin = _admin(
            make_stack,
            "HUBSPOT",
            kind="hubspot",
            url=hs.url,
            credentials={"accessToken": hubspot.TOKEN},
            events=["NEW_FORM_SUBMISSION"],
        )
        email = f"form{next(_n)}@x.io"
        r = admin.post(
            "/api/forms/submit",
            json={"formType": "contact_us", "email": email, "name": "Grace Hopper"},
        )
        assert r.status_code == 201, r.text
        row = wait_for(lambda: _status(engine, "HUBSPOT", email, "DELIVERED"), 15, "delivered")
        assert row["read"]
        assert hs.contacts[email]["properties"]["email"] == email
        (attempt,) = _attempts(engine, row["id"])
        assert attempt["error"] is None
    finally:
        hs.stop()
