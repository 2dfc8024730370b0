"""Through a database outage: 503 with Retry-After within CRM_DB_TIMEOUT, then full recovery.

The outage is real (the app's connections go through a TCP forwarder that drops them all and
refuses or swallows new ones, tests/integration/db_proxy.py), while the shared PostgreSQL
server keeps serving the other tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine

from api.app import create_app
from infra.settings import Settings
from tests.conftest import count
from tests.integration.admin_support import ADMIN_EMAIL, ADMIN_PASSWORD, make_admin, sign_in
from tests.integration.db_proxy import DatabaseProxy, Mode, database_proxy

DB_TIMEOUT = 2.0
FORM = {"formType": "contact_us", "email": "buyer@company.example", "name": "Ann Buyer"}


@pytest.fixture
def proxy() -> Iterator[DatabaseProxy]:
    with database_proxy() as p:
        yield p


@pytest.fixture
def admin(proxy: DatabaseProxy, settings: Settings) -> Iterator[TestClient]:
    """A signed-in admin on an app whose every database connection goes through the proxy."""
    make_admin(settings)
    app = create_app(
        Settings(
            database_url=proxy.url(settings.database_url), rate_limit=None, db_timeout=DB_TIMEOUT
        )
    )
    with TestClient(app=app) as client:
        yield sign_in(client, ADMIN_EMAIL, ADMIN_PASSWORD)


class Traffic:
    """Form posts, readiness probes and admin reads, counting the submissions accepted."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.accepted = 0

    def submit(self) -> httpx.Response:
        r = self.client.post("/api/forms/submit", json=FORM)
        self.accepted += r.status_code == 201
        return r

    def requests(self) -> list[Callable[[], httpx.Response]]:
        return [
            self.submit,
            lambda: self.client.get("/health/ready"),
            lambda: self.client.get("/api/admin/leads?limit=5"),
        ]

    def all_succeed(self, n: int) -> list[int]:
        """The statuses of the next `n` requests, round robin over the three kinds."""
        kinds = self.requests()
        return [kinds[i % len(kinds)]().status_code for i in range(n)]


def assert_rows_complete(engine: Engine, accepted: int) -> None:
    """Every accepted submission has its form, its lead and its notification; nothing else."""
    assert count(engine, "form_submissions") == accepted
    assert count(engine, "leads", "source = 'web_form'") == accepted
    assert count(engine, "crm_notifications", "type = 'NEW_FORM_SUBMISSION'") == accepted


def test_connections_dropped_while_idle_are_replaced_not_used(admin, proxy, engine):
    """A quick restart between requests: every pooled connection is dead, no request fails."""
    traffic = Traffic(admin)
    assert set(traffic.all_succeed(9)) <= {200, 201}
    proxy.cut()
    proxy.restore()
    statuses = traffic.all_succeed(40)
    assert statuses.count(503) == 0 and set(statuses) <= {200, 201}, statuses
    assert_rows_complete(engine, traffic.accepted)


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_outage_answers_503_within_the_budget_then_recovers(admin, proxy, engine, mode: Mode):
    traffic = Traffic(admin)
    assert set(traffic.all_succeed(6)) <= {200, 201}

    proxy.cut(mode)
    for request in traffic.requests() * 2:
        started = time.monotonic()
        r = request()
        took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        body = r.json()
        assert body["status"] in (503, "not ready"), body  # the error shape, or readiness
        assert took < DB_TIMEOUT + 1, f"{r.request.url.path} took {took:.1f} s"

    proxy.restore()
    started = time.monotonic()
    statuses = traffic.all_succeed(40)
    recovered_in = time.monotonic() - started
    assert set(statuses) <= {200, 201}, statuses
    assert recovered_in < 2 * DB_TIMEOUT + 1, f"40 requests took {recovered_in:.1f} s"
    assert_rows_complete(engine, traffic.accepted)


def test_concurrent_submissions_in_an_outage_all_answer_within_the_budget(admin, proxy, engine):
    """Submissions that share a grouped statement share its failure: none waits twice."""
    traffic = Traffic(admin)
    assert traffic.submit().status_code == 201
    proxy.cut()

    def timed_submit(_: int) -> tuple[int, float]:
        started = time.monotonic()
        return traffic.submit().status_code, time.monotonic() - started

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(timed_submit, range(16)))
    proxy.restore()
    assert [status for status, _ in answers] == [503] * 16
    assert max(took for _, took in answers) < DB_TIMEOUT + 1, answers
    assert_rows_complete(engine, traffic.accepted)


def test_the_form_pool_opens_at_start_up_outside_any_request(proxy, settings, capsys):
    """Its connections exist before the first request, and its log lines (reconnection
    warnings in an outage) carry no request's id."""
    app = create_app(
        Settings(
            database_url=proxy.url(settings.database_url),
            rate_limit=None,
            db_timeout=DB_TIMEOUT,
            log_format="json",
        )
    )
    with TestClient(app=app) as client:
        deadline = time.monotonic() + 5
        while proxy.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.connections >= 2  # the pool's min_size, with no request yet
        first = client.post("/api/forms/submit", json=FORM, headers={"X-Request-ID": "first-one"})
        assert first.status_code == 201
        proxy.cut()
        assert client.post("/api/forms/submit", json=FORM).status_code == 503
        proxy.restore()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    pool_lines = [line for line in lines if line.get("logger") == "psycopg.pool"]
    assert pool_lines, "the outage left no line of the pool's reconnection attempts"
    assert all("request_id" not in line for line in pool_lines), pool_lines
