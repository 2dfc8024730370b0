"""SIGTERM: a worker finishes its in-flight batch, records it, releases what it holds, and exits."""

from __future__ import annotations

import signal
import time

from tests.conftest import count
from tests.e2e.harness import Receiver, wait_for
from tests.e2e.test_outbox_delivery_resilience import seed_notifications


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


def test_api_finishes_a_request_in_flight_on_sigterm(pg_url, engine, tmp_path):
    """uvicorn stops accepting, lets the request in flight commit and answer, then exits."""
    import json
    import threading

    import httpx

    from tests.e2e.harness import Proc, free_port

    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": pg_url, "CRM_RATE_LIMIT": "off"}
    api = Proc(["api", "--port", str(port)], env, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, 60, "the API")
    body = json.dumps({"formType": "quote_request", "email": "slow@client.io"}).encode()
    half = threading.Event()

    def slow_body():  # a slow client: the request is in flight when SIGTERM arrives
        yield body[:10]
        half.set()
        time.sleep(1.5)
        yield body[10:]

    answer: dict = {}

    def post() -> None:
        answer["r"] = httpx.post(
            f"{base}/api/forms/submit",
            content=slow_body(),
            headers={"content-type": "application/json", "content-length": str(len(body))},
            timeout=30,
        )

    t = threading.Thread(target=post)
    t.start()
    assert half.wait(10)
    time.sleep(0.2)
    api.popen.send_signal(signal.SIGTERM)
    t.join(30)
    assert answer["r"].status_code == 201, answer["r"].text
    assert api.popen.wait(timeout=30) is not None
    api.stop()
    assert count(engine, "form_submissions", "data->>'email' = 'slow@client.io'") == 1
