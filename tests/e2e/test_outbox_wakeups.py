"""Wake-ups do not pile up while no worker runs, and a worker that starts delivers at once.

Real API app (its wake-up thread publishes to Redis), real `crm worker` processes, real
receiver, no beat: only wake-ups deliver. The "wake-up pending" flag (infra/wakeup_flag.py)
lets at most one dispatch message wait in the Celery queue however many commits are made;
the worker dispatches once at start-up, so a backlog needs no commit or sweep to start moving.
"""

from __future__ import annotations

import time
from dataclasses import replace

import redis
from litestar.testing import TestClient

from api.app import create_app
from tests.conftest import REDIS_URL
from tests.e2e.harness import wait_for

FORMS = 2_000


def _post_forms(client, n: int, prefix: str) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        r = client.post(
            "/api/forms/submit", json={"formType": "contact_us", "email": f"{prefix}{i}@w.io"}
        )
        assert r.status_code == 201, r.text


def test_no_worker_leaves_one_wakeup_queued_and_a_late_worker_delivers_at_once(make_stack):
    stack = make_stack(CRM_SWEEP_SECONDS="30")  # and no beat at all: only wake-ups deliver
    broker = redis.Redis.from_url(f"{REDIS_URL}/0")
    client = stack.client()
    _post_forms(client, FORMS, "pile")
    queued = broker.llen(stack.queue)
    assert queued <= 1, f"{queued} dispatch messages wait for a worker that is not there"

    started = time.monotonic()
    stack.worker()
    deliveries = stack.receiver.deliveries
    wait_for(lambda: deliveries, 10, "the first webhook of the backlog")
    # Correctness, not speed (bench/drain.py part (s) measures start-up): the backlog moves
    # long before the 30 s sweep could have moved it, so the queued wake-up or the start-up
    # dispatch did.
    assert deliveries[0].at - started < 10, deliveries[0].at - started
    wait_for(lambda: len(set(stack.receiver.ids())) >= FORMS, 60, "the whole backlog")

    # A fresh form once the backlog is out: delivered at wake-up latency, not behind old tasks.
    for i in range(5):
        sent = time.monotonic()
        _post_forms(client, 1, f"fresh{i}-")
        d = wait_for(
            lambda i=i: next(
                (x for x in list(deliveries) if x.json["data"]["email"] == f"fresh{i}-0@w.io"),
                None,
            ),
            5,
            "the fresh form's webhook",
        )
        # Not queued behind stale wake-ups (they once held fresh rows for 15 s).
        assert d.at - sent < 2, d.at - sent


def test_a_worker_started_with_a_backlog_and_no_wakeup_delivers_at_once(make_stack):
    stack = make_stack(CRM_SWEEP_SECONDS="30")
    # The backlog's wake-ups go to another queue: as if they had expired or been lost, only the
    # worker's own start-up dispatch can move the backlog.
    elsewhere = f"{stack.queue}-elsewhere"
    with TestClient(app=create_app(replace(stack.settings, celery_queue=elsewhere))) as client:
        _post_forms(client, 50, "backlog")
    broker = redis.Redis.from_url(f"{REDIS_URL}/0")
    broker.delete(elsewhere, f"crm-wakeup-pending:{elsewhere}")
    assert broker.llen(stack.queue) == 0

    stack.worker()
    ready = time.monotonic()  # within 20 ms of the worker's "ready." line
    deliveries = stack.receiver.deliveries
    wait_for(lambda: deliveries, 10, "the first webhook of the backlog")
    # Only the worker's own start-up dispatch can have moved it (no wake-up, sweep 30 s away),
    # and it is the first thing the worker does once ready. How fast start-up is, is a figure
    # of bench/drain.py part (s), not a timed test: Python and Celery boot dominate it.
    assert deliveries[0].at - ready < 3, deliveries[0].at - ready
    wait_for(lambda: len(set(stack.receiver.ids())) >= 50, 30, "the whole backlog")
