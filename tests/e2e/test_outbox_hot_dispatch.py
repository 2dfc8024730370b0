"""A hot dispatch: after draining, a dispatch task lingers on the Redis wake list and delivers
the next commits without a Celery task per commit (infra/wakeup_flag.py, worker/runtime.py).

Real API app (its wake-up thread talks to Redis), real `crm worker`, real receiver, no beat:
only wake-ups deliver, so a lost wake-up shows as a row that never arrives.
"""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest
import redis

from api.app import WAKER_PROCESS
from tests.conftest import REDIS_URL
from tests.e2e.harness import wait_for

LINGER = 0.2
ROUNDS = 25


def _flag(queue: str) -> bytes | None:
    value: bytes | None = redis.Redis.from_url(f"{REDIS_URL}/0").get(f"crm-wakeup-pending:{queue}")
    return value


def _watched(queue: str) -> bool:
    """A dispatch holds the flag with its token (not `pending`): it watches the wake list."""
    return _flag(queue) not in (None, b"pending")


def _count_publishes(client) -> list[int]:  # type: ignore[no-untyped-def]
    """Counts the Celery wake-ups the API's waker publishes."""
    waker = client.app.state[WAKER_PROCESS]
    published = [0]
    publish = waker._publish

    def counting() -> None:
        published[0] += 1
        publish()

    waker._publish = counting
    return published


def _submit(client, email: str) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/forms/submit", json={"formType": "contact_us", "email": email})
    assert r.status_code == 201, r.text


def _delivered(stack, email: str) -> bool:  # type: ignore[no-untyped-def]
    return any(d.json["data"]["email"] == email for d in list(stack.receiver.deliveries))


def test_a_lingering_dispatch_delivers_new_commits_without_a_celery_task(make_stack):
    stack = make_stack(CRM_SWEEP_SECONDS="30", CRM_DISPATCH_LINGER_SECONDS="3")
    client = stack.client()
    published = _count_publishes(client)
    stack.worker()
    # The worker's start-up dispatch found nothing due and now waits on the wake list.
    wait_for(lambda: _watched(stack.queue), 10, "the start-up dispatch watching")

    for i in range(5):
        _submit(client, f"hot{i}@w.io")
        wait_for(lambda i=i: _delivered(stack, f"hot{i}@w.io"), 5, f"form {i} delivered")
    assert published[0] == 0, "commits made while a dispatch lingers published Celery tasks"
    assert _watched(stack.queue)

    # Idle for the linger window: it leaves (deletes the flag), so the next commit publishes.
    wait_for(lambda: _flag(stack.queue) is None, 10, "the dispatch leaving once idle")
    _submit(client, "cold@w.io")
    wait_for(lambda: _delivered(stack, "cold@w.io"), 5, "the form after it left")
    assert published[0] == 1


def test_no_commit_is_lost_while_dispatches_take_and_leave_the_watch(make_stack):
    """Rounds of concurrent commits from several API instances, timed around a short linger
    window, so commits land while a dispatch watches, leaves, or a new one starts; each round
    must be delivered before the next starts (a later commit cannot carry a lost one)."""
    stack = make_stack(CRM_SWEEP_SECONDS="30", CRM_DISPATCH_LINGER_SECONDS=str(LINGER))
    clients = [stack.client() for _ in range(4)]
    stack.worker()
    rng = random.Random(14)
    for round_ in range(ROUNDS):
        # The watch leaves about LINGER s after its last drain, which ended just after the last
        # delivery: aim the round at that moment, give or take scheduling noise.
        last = stack.receiver.deliveries[-1].at if stack.receiver.deliveries else time.monotonic()
        time.sleep(max(0.0, last + LINGER + rng.uniform(-0.02, 0.03) - time.monotonic()))
        barrier = threading.Barrier(len(clients))

        def post(c, n: int, r: int = round_, b: threading.Barrier = barrier) -> None:  # type: ignore[no-untyped-def]
            b.wait()
            _submit(c, f"r{r}-{n}@w.io")

        threads = [threading.Thread(target=post, args=(c, n)) for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(
            lambda r=round_: all(_delivered(stack, f"r{r}-{n}@w.io") for n in range(len(clients))),
            5,
            f"round {round_} delivered",
        )
    assert len(set(stack.receiver.ids())) == ROUNDS * len(clients)


@pytest.mark.parametrize("whom", ["main process", "process group"])
def test_sigterm_stops_a_lingering_worker_at_once(make_stack, whom):
    # Without noticing the stop, an idle dispatch would wait 20 s for wake-ups.
    stack = make_stack(CRM_DISPATCH_LINGER_SECONDS="20", CRM_DISPATCH_BUDGET="30")
    worker = stack.worker()
    wait_for(lambda: _watched(stack.queue), 10, "the start-up dispatch watching")

    started = time.monotonic()
    if whom == "main process":  # Docker, systemd KillMode=mixed: Celery's warm shutdown
        worker.popen.send_signal(signal.SIGTERM)
        worker.popen.wait(timeout=30)
    else:
        worker.kill(signal.SIGTERM)
    stopped_in = time.monotonic() - started
    assert stopped_in < 3, f"took {stopped_in:.1f}s to stop"
    assert _flag(stack.queue) is None  # it left: the next commit publishes a wake-up
