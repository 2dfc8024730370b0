"""SIGTERM: a worker finishes its in-flight batch, records it, releases what it holds, and exits."""

from __future__ import annotations

import signal
import time

from tests.conftest import count
from tests.e2e.harness import Receiver, wait_for
from tests.e2e.test_delivery_resilience import seed_notifications


def test_sigterm_finishes_or_releases_in_flight_work(make_stack, engine):
    seed_notifications(engine, 120)
    receiver = Receiver(behaviour=lambda d, nth: (200, 1.0)).start()  # a slow hub: 1 s a request
    stack = make_stack(
        receiver, CRM_BATCH_SIZE="20", CRM_MAX_IN_FLIGHT="20", CRM_LEASE_SECONDS="120"
    )
    worker = stack.worker(concurrency=1)
    stack.client().post("/api/newsletter-subscribe", json={"email": "wake@up.io"})
    wait_for(lambda: len(receiver.deliveries) >= 5, 30, "a batch in flight")

    started = time.monotonic()
    worker.kill(signal.SIGTERM)  # the whole process group, as an orchestrator would
    stopped_in = time.monotonic() - started
    assert stopped_in < 30, f"took {stopped_in:.1f}s to stop"
    # Nothing is left leased to the dead worker: it was acknowledged or given back, so no row
    # waits for the 120 s lease to expire.
    assert count(engine, "crm_notifications", "NOT read AND claimed_until > now()") == 0, (
        worker.log()[-3000:]
    )
    delivered = count(engine, "crm_notifications", "read")
    assert delivered >= 5  # the in-flight batch was finished and recorded, not dropped

    receiver.behaviour = lambda d, nth: (200, 0.0)
    stack.worker(concurrency=1, name="successor")
    stack.beat()
    wait_for(lambda: count(engine, "crm_notifications", "read") == 121, 60, "the rest delivered")
