"""Prometheus metrics shared by the API and the workers, and the scrape-time outbox gauges.

Counters and histograms are recorded by the process doing the work; with
PROMETHEUS_MULTIPROC_DIR set, prometheus-client keeps them in files of that directory, so one
scrape sees every API and worker process of the host. The unread gauges are not recorded by
anyone: the API reads them from the database when scraped and hands them to `OutboxCollector`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

SUBMISSIONS = Counter(
    "crm_submissions",
    "Public submissions by form type and result (accepted, replayed, invalid, ...)",
    ["form_type", "result"],
)
NOTIFICATIONS_CREATED = Counter(
    "crm_notifications_created",
    "Outbox rows committed, by target system and notification type",
    ["target_system", "type"],
)
DELIVERED = Counter(
    "crm_notifications_delivered", "Notifications acknowledged by their target", ["target_system"]
)
RETRIED = Counter(
    "crm_notifications_retried",
    "Failed attempts that will be retried (non-2xx, timeout, connection error)",
    ["target_system"],
)
DEAD_LETTERED = Counter(
    "crm_notifications_dead_lettered",
    "Notifications given up on (status FAILED): 410 Gone or attempts exhausted",
    ["target_system"],
)
DELIVERY_LATENCY = Histogram(
    "crm_delivery_latency_seconds",
    "From the notification's commit (created_at) to its acknowledgement by the target",
    ["target_system"],
    buckets=LATENCY_BUCKETS,
)
ATTEMPT_DURATION = Histogram(
    "crm_delivery_attempt_duration_seconds",
    "Duration of one webhook HTTP attempt, by target and outcome",
    ["target_system", "outcome"],
    buckets=HTTP_BUCKETS,
)

# Guardrails per destination (worker/guardrails.py). Gauges: each worker process sets its latest
# view on every claim, a scrape shows the most recent value among live processes.
TARGET_BREAKER_OPEN = Gauge(
    "crm_target_breaker_open",
    "1 while the destination's circuit breaker is open or probing, else 0",
    ["target"],
    multiprocess_mode="livemostrecent",
)
TARGET_ENABLED = Gauge(
    "crm_target_enabled",
    "1 while the destination is enabled, 0 once disabled (410 Gone, failing too long, by hand)",
    ["target"],
    multiprocess_mode="livemostrecent",
)
RATE_LIMITED = Counter(
    "crm_deliveries_rate_limited",
    "Waits for a token of the destination's rate limit while notifications were due",
    ["target"],
)
RETRY_AFTER = Histogram(
    "crm_delivery_retry_after_seconds",
    "Pauses asked for by receivers' Retry-After on 429/503 (capped at 1 h)",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600),
)

WRITE_GROUP_SIZE = Histogram(
    "crm_write_group_size",
    "Submissions per grouped write statement (group commit, infra/group_commit.py)",
    buckets=(1, 2, 4, 8, 16, 32),
)

# Outbox rows built during the current request; counted once the response says they committed.
_pending: ContextVar[list[tuple[str, str]] | None] = ContextVar("crm_pending_rows", default=None)


def note_notifications(rows: Iterable[dict[str, Any]]) -> None:
    """Called where outbox rows are built; a no-op outside a request that tracks them."""
    pending = _pending.get()
    if pending is not None:
        pending.extend((str(r["target_system"]), str(r["type"])) for r in rows)


def track_notifications() -> list[tuple[str, str]]:
    """Start collecting the outbox rows built in this context (one request)."""
    pending: list[tuple[str, str]] = []
    _pending.set(pending)
    return pending


def count_committed(pending: Sequence[tuple[str, str]]) -> None:
    for target, kind in pending:
        NOTIFICATIONS_CREATED.labels(target, kind).inc()


def share_across_processes(directory: str) -> None:
    """Record into `directory` from now on, even if prometheus-client was imported earlier.

    Call before any metric value exists (before forking workers); the children inherit it.
    """
    os.makedirs(directory, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    values.ValueClass = values.get_value_class()


def process_registry(metrics_dir: str | None) -> CollectorRegistry:
    """This process's metrics, or every process's in the multiprocess directory."""
    if not metrics_dir:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
    return registry


def mark_process_dead(metrics_dir: str | None, pid: int | None = None) -> None:
    """Drop a finished process's live gauges (its last-dispatch time) from the directory."""
    if metrics_dir:
        multiprocess.mark_process_dead(pid or os.getpid(), metrics_dir)  # type: ignore[no-untyped-call]


class Unread(Protocol):
    """A target's unread notifications, as domain.outbox.queries.unread_by_target reads them."""

    @property
    def target_system(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def oldest_created_at(self) -> datetime | None: ...


class OutboxCollector(Collector):
    """crm_notifications_unread and crm_notifications_oldest_unread_age_seconds per target."""

    def __init__(
        self, unread: Sequence[Unread], targets: Iterable[str], now: datetime | None = None
    ):
        self.unread = {u.target_system: u for u in unread}
        self.targets = sorted({*targets, *self.unread})
        self.now = now or datetime.now(UTC)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = GaugeMetricFamily(
            "crm_notifications_unread",
            "Unread (undelivered) notifications per target system, read at scrape time",
            labels=["target_system"],
        )
        age = GaugeMetricFamily(
            "crm_notifications_oldest_unread_age_seconds",
            "Age of the oldest unread notification per target system (0 when none)",
            labels=["target_system"],
        )
        for target in self.targets:
            u = self.unread.get(target)
            count.add_metric([target], u.count if u else 0)
            oldest = u.oldest_created_at if u else None
            age.add_metric([target], max((self.now - oldest).total_seconds(), 0) if oldest else 0)
        yield count
        yield age


def exposition(metrics_dir: str | None, outbox: OutboxCollector | None = None) -> bytes:
    """The text exposition: process (or multiprocess) metrics, then the outbox gauges."""
    body = generate_latest(process_registry(metrics_dir))
    if outbox is not None:
        extra = CollectorRegistry(auto_describe=False)
        extra.register(outbox)
        body += generate_latest(extra)
    return body


def new_request_id() -> str:
    return uuid.uuid4().hex
