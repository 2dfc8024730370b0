"""Worker-side metrics and delivery log lines, and the worker's own /metrics server.

Each prefork child records into PROMETHEUS_MULTIPROC_DIR; `crm worker` serves that directory
on CRM_WORKER_METRICS_PORT, so one scrape sees every child of the worker.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import Any

from celery.signals import worker_process_shutdown
from prometheus_client import Gauge, start_http_server

from domain.outbox.delivery import AttemptResult, Recorded, describe
from infra.logs import get_logger
from infra.metrics import (
    ATTEMPT_DURATION,
    DEAD_LETTERED,
    DELIVERED,
    DELIVERY_LATENCY,
    RETRIED,
    mark_process_dead,
    process_registry,
)
from infra.settings import Settings

log = get_logger("crm.delivery")
summary_log = get_logger("crm.dispatch")
# Outcomes of the dispatch run in progress in this process, by (target, outcome).
_outcomes: Counter[tuple[str, str]] = Counter()

LAST_DISPATCH = Gauge(
    "crm_worker_last_dispatch_timestamp_seconds",
    "Unix time at which this worker process last finished a dispatch run",
    multiprocess_mode="liveall",
)


def observe_recorded(recorded: Recorded, acknowledged_at: float | None = None) -> None:
    """Count and log one recorded batch, right after its outcomes were committed."""
    now = acknowledged_at or time.time()
    for r in recorded.delivered:
        target = r.notification.target_system
        DELIVERED.labels(target).inc()
        _outcomes[target, "delivered"] += 1
        ATTEMPT_DURATION.labels(target, "delivered").observe(r.duration_ms / 1000)
        created = r.notification.created_at
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        latency = max(now - created.timestamp(), 0.0)
        DELIVERY_LATENCY.labels(target).observe(latency)
        _log(r, "notification delivered", latency_s=round(latency, 3))
    for r in recorded.retried:
        target = r.notification.target_system
        RETRIED.labels(target).inc()
        _outcomes[target, "retried"] += 1
        ATTEMPT_DURATION.labels(target, "retried").observe(r.duration_ms / 1000)
        _log(r, "delivery failed, will retry", reason=describe(r))
    for r in recorded.failed:
        target = r.notification.target_system
        DEAD_LETTERED.labels(target).inc()
        _outcomes[target, "dead_lettered"] += 1
        ATTEMPT_DURATION.labels(target, "dead_lettered").observe(r.duration_ms / 1000)
        _log(r, "delivery failed, dead-lettered", reason=describe(r), warning=True)


def _log(r: AttemptResult, event: str, warning: bool = False, **extra: Any) -> None:
    n = r.notification
    (log.warning if warning else log.info)(
        event,
        request_id=n.request_id,
        notification_id=str(n.id),
        target_system=n.target_system,
        type=n.type,
        attempt=n.attempts + 1,
        http_status=r.http_status,
        duration_ms=round(r.duration_ms, 1),
        **extra,
    )


@contextmanager
def summarized_dispatch() -> Iterator[None]:
    """One INFO line per dispatch run that recorded an outcome; a quiet sweep logs nothing.

    Also the worker's health: when this process last completed a dispatch run.
    """
    _outcomes.clear()
    yield
    LAST_DISPATCH.set_to_current_time()
    if not _outcomes:
        return
    by_target: dict[str, dict[str, int]] = {}
    for (target, outcome), count in sorted(_outcomes.items()):
        by_target.setdefault(target, {"delivered": 0, "retried": 0, "dead_lettered": 0})
        by_target[target][outcome] = count
    delivered = sum(t["delivered"] for t in by_target.values())
    summary_log.info(
        f"dispatch: delivered {delivered}, failed {sum(_outcomes.values()) - delivered}",
        by_target=by_target,
    )


def serve_metrics(settings: Settings) -> None:
    """Serve the multiprocess directory's metrics on CRM_WORKER_METRICS_PORT (a daemon thread)."""
    assert settings.worker_metrics_port is not None
    start_http_server(
        settings.worker_metrics_port,
        addr=settings.worker_metrics_host,
        registry=process_registry(settings.metrics_dir),
    )
    log.info(
        "worker metrics served",
        url=f"http://{settings.worker_metrics_host}:{settings.worker_metrics_port}/metrics",
    )


@worker_process_shutdown.connect
def _forget_process(pid: int | None = None, **_: Any) -> None:
    """A child that exits takes its last-dispatch gauge with it."""
    from worker.celery_app import settings

    mark_process_dead(settings.metrics_dir, pid)
