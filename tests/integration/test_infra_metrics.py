"""/metrics: submissions, outbox rows, request durations, scrape-time unread gauges, and the
worker's delivery counters, against real PostgreSQL and a real HTTP receiver."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from domain.outbox.queries import unread_by_target_statement
from domain.rules import RetryPolicy
from infra.egress import parse_allow
from infra.metrics import exposition
from infra.settings import Secret, Settings, Target
from tests.conftest import rows
from tests.e2e.harness import ROOT, SECRET, Receiver
from tests.integration.plan_support import declared_indexes_of
from worker.dispatcher import Dispatcher

FORM = {"formType": "quote_request", "email": "buyer@company.com", "name": "John Smith"}


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_id_is_echoed_and_stored_on_the_notification(client, engine):
    r = client.post("/api/forms/submit", json=FORM, headers={"X-Request-ID": "trace-abc.123"})
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == "trace-abc.123"
    (note,) = rows(engine, "SELECT request_id FROM crm_notifications")
    assert note["request_id"] == "trace-abc.123"


def test_a_request_id_is_generated_when_missing_or_unsafe(client, engine):
    r = client.post("/api/forms/submit", json=FORM, headers={"X-Request-ID": "bad id\twith spaces"})
    generated = r.headers["x-request-id"]
    assert r.status_code == 201 and len(generated) == 32 and generated != "bad id\twith spaces"
    (note,) = rows(engine, "SELECT request_id FROM crm_notifications")
    assert note["request_id"] == generated
    assert client.get("/health/live").headers["x-request-id"] != generated


def test_submissions_are_counted_by_form_type_and_result(client):
    before = scrape(client)
    assert client.post("/api/forms/submit", json=FORM).status_code == 201
    assert client.post("/api/forms/submit", json={**FORM, "email": "nope"}).status_code == 400
    key = {"Idempotency-Key": uuid.uuid4().hex}
    contact = {**FORM, "formType": "contact_us"}
    assert client.post("/api/forms/submit", json=contact, headers=key).status_code == 201
    assert client.post("/api/forms/submit", json=contact, headers=key).status_code == 201
    assert client.post("/api/newsletter-subscribe", json={"email": "n@x.io"}).status_code == 201
    after = scrape(client)

    def grew(form_type: str, result: str) -> float:
        name = "crm_submissions_total"
        return value(after, name, form_type=form_type, result=result) - value(
            before, name, form_type=form_type, result=result
        )

    assert grew("quote_request", "accepted") == 1
    assert grew("quote_request", "invalid") == 1
    assert grew("contact_us", "accepted") == 1
    assert grew("contact_us", "replayed") == 1
    assert grew("newsletter_subscribe", "accepted") == 1


def test_committed_outbox_rows_are_counted_once_and_rejected_ones_never(client):
    name = "crm_notifications_created_total"
    labels = {"target_system": "BZION_HUB", "type": "NEW_FORM_SUBMISSION"}
    before = value(scrape(client), name, **labels)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    client.post("/api/forms/submit", json=FORM, headers=key)
    client.post("/api/forms/submit", json=FORM, headers=key)  # replayed: nothing written
    client.post("/api/forms/submit", json={**FORM, "formType": "nope"})  # 400
    assert value(scrape(client), name, **labels) - before == 1


def test_api_request_duration_is_recorded_by_route_template_and_status(client):
    client.post("/api/forms/submit", json=FORM)
    client.post(f"/api/v1/crm-notifications/{uuid.uuid4()}/ack")  # 401, one series per route
    samples = scrape(client)
    count = "crm_api_request_duration_seconds_count"
    assert value(
        samples,
        count,
        method="POST",
        path="/api/forms/submit",
        status_code="201",
        app_name="crm-sync",
    )
    paths = {dict(k[1]).get("path") for k in samples if k[0] == count}
    assert "/api/v1/crm-notifications/{notification_id:uuid}/ack" in paths or any(
        p and p.endswith("/ack") and "{" in p for p in paths
    )
    assert not any(p and str(uuid.UUID(int=0))[:4] in p and "{" not in p for p in paths)


def test_grouped_writes_are_counted_by_group_size(client):
    before = value(scrape(client), "crm_write_group_size_count")
    client.post("/api/forms/submit", json=FORM)
    after = scrape(client)
    assert value(after, "crm_write_group_size_count") - before == 1
    assert value(after, "crm_write_group_size_bucket", le="1.0") >= 1


def test_request_counts_and_in_progress_gauge_balance(client):
    form = {"method": "POST", "path": "/api/forms/submit", "app_name": "crm-sync"}
    before = scrape(client)
    client.post("/api/forms/submit", json=FORM)
    client.post("/api/forms/submit", json={**FORM, "email": "not-an-email"})
    after = scrape(client)
    total = "crm_api_requests_total"
    assert (
        value(after, total, **form, status_code="201")
        - value(before, total, **form, status_code="201")
        == 1
    )
    assert (
        value(after, total, **form, status_code="400")
        - value(before, total, **form, status_code="400")
        == 1
    )
    assert ("crm_api_requests_in_progress", tuple(sorted(form.items()))) in after
    assert value(after, "crm_api_requests_in_progress", **form) == 0  # every inc has its dec
    assert not any(k[0] == total and dict(k[1])["path"] == "/metrics" for k in after)


def test_unread_gauges_are_read_from_the_database_at_scrape_time(client, engine):
    samples = scrape(client)
    assert value(samples, "crm_notifications_unread", target_system="BZION_HUB") == 0
    assert (
        value(samples, "crm_notifications_oldest_unread_age_seconds", target_system="BZION_HUB")
        == 0
    )
    client.post("/api/forms/submit", json=FORM)
    client.post("/api/forms/submit", json=FORM)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE crm_notifications SET created_at = now() - interval '90 seconds'")
        )
    samples = scrape(client)
    assert value(samples, "crm_notifications_unread", target_system="BZION_HUB") == 2
    age = value(samples, "crm_notifications_oldest_unread_age_seconds", target_system="BZION_HUB")
    assert 89 <= age < 200
    with engine.begin() as conn:
        conn.execute(text("UPDATE crm_notifications SET read = true, read_at = now()"))
    assert value(scrape(client), "crm_notifications_unread", target_system="BZION_HUB") == 0


def test_the_unread_query_is_served_by_the_partial_unread_index(engine):
    """EXPLAIN of the one unread-per-target statement (metrics, alerts, stats, monitoring)."""
    stmt = unread_by_target_statement()
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        assert declared_indexes_of(conn, sql) == {"idx_crm_notifications_unread"}


def test_worker_counts_delivered_retried_and_dead_lettered_per_target(client, engine, pg_url):
    statuses = {"ok@x.io": 200, "busy@x.io": 503, "gone@x.io": 410}
    receiver = Receiver(behaviour=lambda d, _n: (statuses[d.json["data"]["email"]], 0.0)).start()
    target = f"T{uuid.uuid4().hex[:6].upper()}"
    try:
        settings = Settings(
            database_url=pg_url,
            targets=(Target(target, receiver.url, (Secret(SECRET),)),),
            retry_policy=RetryPolicy(schedule=(60,), jitter=0, max_attempts=5),
            egress_allow=parse_allow("127.0.0.1/32"),
        )
        routed = Settings(database_url=pg_url, targets=settings.targets)
        from litestar.testing import TestClient

        from api.app import create_app

        with TestClient(app=create_app(routed)) as c:
            for email in statuses:
                r = c.post(
                    "/api/forms/submit",
                    json={**FORM, "email": email},
                    headers={"X-Request-ID": f"rid-{email[:2]}"},
                )
                assert r.status_code == 201
        before = {
            m: REGISTRY.get_sample_value(f"crm_notifications_{m}_total", {"target_system": target})
            or 0
            for m in ("delivered", "retried", "dead_lettered")
        }
        d = Dispatcher(settings)
        try:
            report = d.run(budget=5)
        finally:
            d.close()
        assert (report.delivered, report.retried, len(report.failed)) == (1, 1, 1)
        for m in ("delivered", "retried", "dead_lettered"):
            now = REGISTRY.get_sample_value(
                f"crm_notifications_{m}_total", {"target_system": target}
            )
            assert now == before[m] + 1, m
        latency = REGISTRY.get_sample_value(
            "crm_delivery_latency_seconds_count", {"target_system": target}
        )
        assert latency == 1
        for outcome in ("delivered", "retried", "dead_lettered"):
            assert (
                REGISTRY.get_sample_value(
                    "crm_delivery_attempt_duration_seconds_count",
                    {"target_system": target, "outcome": outcome},
                )
                == 1
            )
        assert {d.headers["x-request-id"] for d in receiver.deliveries} == {
            "rid-ok",
            "rid-bu",
            "rid-go",
        }
    finally:
        receiver.stop()


def test_metrics_of_several_processes_are_aggregated_from_the_multiprocess_dir(tmp_path: Path):
    record = "from infra.metrics import DELIVERED; DELIVERED.labels('MP_TARGET').inc({n})"
    for n in (2, 3):  # two processes, each with its own file in the directory
        subprocess.run(
            [sys.executable, "-c", record.format(n=n)],
            cwd=ROOT,
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
            check=True,
        )
    body = exposition(str(tmp_path)).decode()
    assert 'crm_notifications_delivered_total{target_system="MP_TARGET"} 5.0' in body
    assert len(list(tmp_path.glob("counter_*.db"))) == 2
