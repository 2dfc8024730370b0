"""`crm api --workers 2` with the rate limiter on: the limit holds across both processes.

Each process batches its hits into one Redis round trip (api/protection.py); the count stays
exact, so concurrent posts from one client over fresh connections (the kernel hands them to
either process) get exactly `limit` answers 201 and the rest 429 with Retry-After.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from tests.conftest import REDIS_URL
from tests.e2e.harness import Proc, answers_200, free_port, wait_for

LIMIT = 40
POSTS = 120
DB = 11  # a Redis database of its own: other tests flush db 1


def test_the_limit_holds_exactly_across_two_api_processes(pg_url, tmp_path):
    store = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    for key in store.scan_iter("crm-rate-limit:127.0.0.1:*"):
        store.delete(key)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": pg_url,
        "CRM_RATE_LIMIT": f"{LIMIT}/day",
        "CRM_RATE_LIMIT_REDIS_URL": f"{REDIS_URL}/{DB}",
        "CELERY_BROKER_URL": f"{REDIS_URL}/0",
    }
    api = Proc(["api", "--port", str(port), "--workers", "2"], env, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_200(f"{base}/health/live"), 60, "the API")

        def post(i: int) -> httpx.Response:
            return httpx.post(
                f"{base}/api/forms/submit",
                json={"formType": "contact_us", "email": f"c{i}@limit.example"},
                headers={"Connection": "close"},
                timeout=30,
            )

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(POSTS)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] * LIMIT + [429] * (POSTS - LIMIT), statuses
        refused = [a for a in answers if a.status_code == 429]
        assert all(int(a.headers["Retry-After"]) > 0 for a in refused)
        assert all(a.headers["RateLimit-Remaining"] == "0" for a in refused)
        remaining = sorted(int(a.headers["RateLimit-Remaining"]) for a in answers if a.is_success)
        assert remaining == list(range(LIMIT))  # every accepted post had its own rank
        assert all(a.headers["RateLimit-Limit"] == str(LIMIT) for a in answers)
        total = store.get(f"crm-rate-limit:127.0.0.1:{int(time.time() // 86400)}")
        assert total is not None and int(total) > LIMIT  # counted in Redis, shared
    finally:
        api.stop()
