"""One submission followed end to end by its request id: API response, outbox row, worker log
line (JSON), the receiver's x-request-id header; and the worker's own metrics endpoint."""

from __future__ import annotations

import json
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import rows
from tests.e2e.harness import free_port, wait_for


def _worker_metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _json_lines(log: str) -> list[dict]:
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def test_one_request_id_is_followed_from_the_api_to_the_receiver(make_stack, engine):
    port = free_port()
    stack = make_stack(CRM_LOG_FORMAT="json", CRM_WORKER_METRICS_PORT=str(port))
    worker = stack.worker(concurrency=1)
    client = stack.client()
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"

    r = client.post(
        "/api/forms/submit",
        json={
            "formType": "contact_us",
            "email": "jane.doe@example.com",
            "phone": "+1 555 123 4567",
        },
        headers={"X-Request-ID": request_id},
    )
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == request_id
    (note,) = rows(engine, "SELECT id, request_id FROM crm_notifications")
    assert note["request_id"] == request_id

    delivery = wait_for(
        lambda: next(iter(stack.receiver.deliveries), None), 30, "the webhook at the receiver"
    )
    assert delivery.headers["x-request-id"] == request_id
    assert delivery.headers["webhook-id"] == str(note["id"])

    def delivered_line() -> dict | None:
        return next(
            (
                e
                for e in _json_lines(worker.log())
                if e.get("event") == "notifications delivered"
                and request_id in e.get("request_ids", [])
            ),
            None,
        )

    # One line per delivered batch, naming every notification and request id in it.
    line = wait_for(delivered_line, 30, "the worker's JSON delivery line with the request id")
    assert line["notification_ids"] == [str(note["id"])] and line["count"] == 1
    assert line["target_system"] == "BZION_HUB" and line["max_duration_ms"] >= 0
    assert line["level"] == "info" and line["logger"] == "crm.delivery" and "timestamp" in line
    log = worker.log()
    assert "ready." in log and "jane.doe@example.com" not in log

    def delivered_counter() -> float:
        samples = _worker_metrics(port)
        return samples.get(
            ("crm_notifications_delivered_total", (("target_system", "BZION_HUB"),)), 0.0
        )

    assert wait_for(delivered_counter, 30, "the worker's delivered counter") == 1.0
    samples = _worker_metrics(port)
    latency = samples[("crm_delivery_latency_seconds_count", (("target_system", "BZION_HUB"),))]
    assert latency == 1.0
    last_dispatch = [
        v
        for (name, _), v in samples.items()
        if name == "crm_worker_last_dispatch_timestamp_seconds"
    ]
    assert last_dispatch and max(last_dispatch) > 1.6e9
