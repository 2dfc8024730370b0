"""`crm run` on the embedded default: SQLite, a server-less broker, a demo hub; no servers."""

from __future__ import annotations

import sqlite3

import httpx

from tests.e2e.harness import Proc, answers_200, free_port, wait_for


def test_crm_run_turns_a_form_into_a_verified_signed_webhook(tmp_path):
    port, hub = free_port(), free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = Proc(
        ["run", "--port", str(port), "--hub-port", str(hub)],
        env,
        tmp_path / "run.log",
        cwd=tmp_path,
    )
    try:
        wait_for(lambda: answers_200(f"http://127.0.0.1:{port}/health/live"), 60, "the API")
        wait_for(lambda: "ready." in proc.log(), 60, "the worker")
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/forms/submit",
            json={"formType": "quote_request", "email": "buyer@company.com"},
        )
        assert r.status_code == 201
        note_id = r.json()["notificationId"]
        wait_for(lambda: f"id {note_id}, signature verified" in proc.log(), 30, "the demo hub")
        db = sqlite3.connect(tmp_path / "crm.db")
        wait_for(
            lambda: db.execute("SELECT read FROM crm_notifications").fetchone() == (1,),
            15,
            "the row marked read",
        )
        assert (tmp_path / "crm-broker.db").exists()
        assert "REJECTED" not in proc.log()
    finally:
        proc.stop()
