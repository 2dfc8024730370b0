"""Worker-side metrics and delivery log lines, and the worker's own /metrics server.

Each prefork child records into PROMETHEUS_MULTIPROC_DIR; `crm worker` serves that directory
on CRM_WORKER_METRICS_PORT, so one scrape sees every child of the worker.
"""

from __future__ import annotations

import logging
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
_row_log = logging.getLogger("crm.delivery")
summary_log = get_logger("crm.dispatch")
# Outcomes of the dispatch run in progress in this process, by (target, outcome).
_outcomes: Counter[tuple[str, str]] = Counter()

LAST_DISPATCH = Gauge(
    "crm_worker_last_dispatch_timestamp_seconds",
    "Unix time at which this worker process last finished a dispatch run",
    multiprocess_mode="liveall",
)


def observe_recorded(recorded: Recorded, acknowledged_at: float | None = None) -> None:
    """Count and log one recorded batch, right after its outcomes were committed.

    Deliveries are logged one INFO line per batch and target (`notifications delivered`, with
    every notification id and request id), not one per row: a line through the log pipeline
    cost a fifth of a worker's CPU per delivery (bench/drain.py). The per-row lines are DEBUG.
    A retry or a dead letter keeps its own line (rare, and each has its own reason).
    """
    now = acknowledged_at or time.time()
    for target, rows in _by_target(recorded.delivered).items():
        DELIVERED.labels(target).inc(len(rows))
        _outcomes[target, "delivered"] += len(rows)
        durations = ATTEMPT_DURATION.labels(target, "delivered")
        latencies = DELIVERY_LATENCY.labels(target)
        latency_max = duration_max = 0.0
        debug = _row_log.isEnabledFor(logging.DEBUG)
        for r in rows:
            durations.observe(r.duration_ms / 1000)
            created = r.notification.created_at
            created = created if created.tzinfo else created.replace(tzinfo=UTC)
            latency = max(now - created.timestamp(), 0.0)
            latencies.observe(latency)
            latency_max = max(latency_max, latency)
            duration_max = max(duration_max, r.duration_ms)
            if debug:
                _log(r, "notification delivered", debug=True, latency_s=round(latency, 3))
        log.info(
            "notifications delivered",
            target_system=target,
            count=len(rows),
            notification_ids=[str(r.notification.id) for r in rows],
            request_ids=list(
                dict.fromkeys(rid for r in rows if (rid := r.notification.request_id))
            ),
            max_duration_ms=round(duration_max, 1),
            max_latency_s=round(latency_max, 3),
        )
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


def _by_target(results: list[AttemptResult]) -> dict[str, list[AttemptResult]]:
    grouped: dict[str, list[AttemptResult]] = {}
    for r in results:
        grouped.setdefault(r.notification.target_system, []).append(r)
    return grouped


def _log(
    r: AttemptResult, event: str, warning: bool = False, debug: bool = False, **extra: Any
) -> None:
    n = r.notification
    (log.warning if warning else log.debug if debug else log.info)(
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
