"""`crm api --workers 2`: a staff session and its CSRF token work on every API process.

Each request goes over a fresh connection (`Connection: close`), so the kernel hands them to
either process; with per-process sessions or keys, about half of them would answer 401/403.
"""

from __future__ import annotations

import httpx

from infra.settings import Settings
from tests.conftest import REDIS_URL
from tests.e2e.harness import Proc, answers_200, free_port, wait_for
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin


def test_a_session_and_its_csrf_token_work_on_every_api_process(pg_url, tmp_path):
    make_admin(Settings(database_url=pg_url, rate_limit=None))
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": pg_url,
        "CRM_RATE_LIMIT": "off",
        "CELERY_BROKER_URL": f"{REDIS_URL}/0",
    }
    api = Proc(["api", "--port", str(port), "--workers", "2"], env, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_200(f"{base}/health/live"), 60, "the API")
        with httpx.Client(base_url=base, headers={"Connection": "close"}, timeout=10) as c:
            login = c.post(
                "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            c.headers["x-csrftoken"] = login.json()["csrfToken"]
            for i in range(24):
                me = c.get("/api/auth/me")
                assert me.status_code == 200, (i, me.status_code, me.text)
                assert me.json()["email"] == ADMIN_EMAIL
                made = c.post("/api/admin/leads", json={"email": f"lead{i}@workers.example"})
                assert made.status_code == 201, (i, made.status_code, made.text)
            assert c.post("/api/auth/logout").status_code == 204
            assert c.get("/api/auth/me").status_code == 401
    finally:
        api.stop()
