"""A lead an admin creates wakes the dispatcher like a form does: its webhook arrives at once.

Real `crm api`, real Celery worker, real receiver, and no beat: with nothing sweeping, only the
wake-up after the request's commit (api/transaction.py) can deliver the NEW_LEAD.
"""

from __future__ import annotations

import time

import httpx
from standardwebhooks.webhooks import Webhook

from tests.e2e.harness import SECRET, Proc, answers_200, free_port, wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin


def test_a_lead_created_by_an_admin_arrives_signed_within_a_second(make_stack, tmp_path):
    stack = make_stack(CRM_SWEEP_SECONDS="30")  # and no beat at all: only a wake-up delivers
    make_admin(stack.settings)
    stack.worker()
    port = free_port()
    api = Proc(["api", "--port", str(port)], stack.env, tmp_path / "api.log")
    stack.procs.append(api)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers_200(f"{base}/health/live"), 60, "the API")
    deliveries = stack.receiver.deliveries
    with httpx.Client(base_url=base, timeout=10) as c:
        # Warm-up through the form path, which has always woken the dispatcher.
        form = {"formType": "contact_us", "email": "warm@up.io"}
        assert c.post("/api/forms/submit", json=form).status_code == 201
        wait_for(lambda: len(deliveries) == 1, 10, "the warm-up form's webhook")

        login = c.post("/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        assert login.status_code == 200, login.text
        c.headers["x-csrftoken"] = login.json()["csrfToken"]
        started = time.monotonic()
        made = c.post("/api/admin/leads", json={"email": "jane@xyz.example", "name": "Jane Doe"})
        assert made.status_code == 201, made.text
        lead_id = made.json()["id"]

    d = wait_for(
        lambda: next((x for x in deliveries if x.json["data"].get("leadId") == lead_id), None),
        1.0,
        "the NEW_LEAD webhook within a second (no beat runs: only the wake-up delivers)",
    )
    assert d.at - started < 1.0
    Webhook(SECRET).verify(d.body, d.headers)  # raises unless the signature is valid
    assert (d.json["type"], d.json["targetSystem"]) == ("NEW_LEAD", "BZION_HUB")
    assert d.json["data"]["email"] == "jane@xyz.example"
