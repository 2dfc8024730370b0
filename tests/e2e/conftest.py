"""Fixtures starting real Celery workers, beat and receivers for the delivery tests."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from litestar.testing import TestClient

from api.app import create_app
from infra.ratelimit import namespace_for
from infra.settings import Settings
from tests.conftest import REDIS_URL
from tests.e2e.harness import Proc, Receiver, base_env


class Stack:
    """A receiver, and the crm processes pointed at it, on a private Celery queue."""

    def __init__(self, pg_url: str, tmp: Path, broker_url: str, receiver: Receiver, **extra: str):
        self.queue = f"crm-test-{uuid.uuid4().hex[:8]}"
        self.receiver = receiver
        self.env = base_env(pg_url, broker_url, self.queue, receiver.url, **extra)
        self.tmp = tmp
        self.procs: list[Proc] = []
        self._clients: list[TestClient] = []

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def worker(self, concurrency: int = 2, name: str = "worker") -> Proc:
        p = Proc(
            ["worker", "-c", str(concurrency)], self.env, self.tmp / f"{name}-{len(self.procs)}.log"
        )
        self.procs.append(p)
        p.wait_ready("ready.")
        return p

    def beat(self) -> Proc:
        p = Proc(
            ["beat", "--schedule", str(self.tmp / f"beat-{uuid.uuid4().hex[:6]}")],
            self.env,
            self.tmp / "beat.log",
        )
        self.procs.append(p)
        p.wait_ready("beat: Starting")
        return p

    def client(self) -> TestClient:
        c = TestClient(app=create_app(self.settings))
        c.__enter__()
        self._clients.append(c)
        return c

    def close(self) -> None:
        for c in self._clients:
            c.__exit__(None, None, None)
        # SIGKILL, not a graceful stop: the test has made its assertions, and a graceful stop
        # of a Celery worker costs 2-2.5 s per stack (a quarter of the suite's e2e time).
        # Graceful shutdown is tested where it is the subject (test_worker_graceful_shutdown.py,
        # test_outbox_hot_dispatch.py); leases and per-test queues make a killed worker harmless.
        for p in self.procs:
            p.kill()
        self.receiver.stop()


@pytest.fixture
def make_stack(pg_url: str, tmp_path: Path, engine) -> Iterator:  # type: ignore[no-untyped-def]
    stacks: list[Stack] = []

    def make(
        receiver: Receiver | None = None, broker_url: str | None = None, **extra: str
    ) -> Stack:
        receiver = receiver or Receiver().start()
        s = Stack(pg_url, tmp_path, broker_url or f"{REDIS_URL}/0", receiver, **extra)
        forget_guardrails(s.settings)  # the session's database is shared by its tests
        stacks.append(s)
        return s

    yield make
    for s in stacks:
        s.close()
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(f"{REDIS_URL}/0").delete(s.queue)
        forget_guardrails(s.settings)


@pytest.fixture(autouse=True)
def _fresh_sign_in_budget() -> None:
    """Each e2e test starts with the sign-in rate limit unused. Every stack's API signs in from
    the same test address into the same Redis store (the broker's db 1, `crm-login-attempts`):
    its 10 sign-ins a minute (api/admin/auth.py) were otherwise shared by every test of the run,
    which then failed with a 429 depending on how fast the tests before them ran."""
    r = redis.Redis.from_url(f"{REDIS_URL}/1")
    with contextlib.suppress(redis.RedisError):
        keys = list(r.scan_iter("crm-login-attempts:*"))
        if keys:
            r.delete(*keys)


def forget_guardrails(settings: Settings) -> None:
    """Drop the destinations' shared state (pauses, breakers, buckets) a test left in Redis."""
    if not settings.guard_redis_url:
        return
    r = redis.Redis.from_url(settings.guard_redis_url)
    with contextlib.suppress(redis.RedisError):
        keys = list(r.scan_iter(f"crm:guard:{namespace_for(settings.database_url)}:*"))
        if keys:
            r.delete(*keys)
