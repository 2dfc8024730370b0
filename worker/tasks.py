"""Celery tasks, thin: each runs one domain function on this process's dispatcher.

Each is idempotent: running one twice does no harm. The per-process dispatcher lives in
worker/runtime.py, the graceful SIGTERM stop in worker/shutdown.py.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.customers.links import repair_links
from domain.destinations.directory import Directory
from domain.destinations.inbound import forget_old_receipts
from domain.destinations.registry import drop_expired_secrets
from domain.models import utcnow
from domain.outbox.alerts import AlertEvent, check_stale
from domain.outbox.partitions import ensure_partitions
from domain.outbox.retention import purge_expired
from domain.quotes.expiry import EXPIRY_BATCH, expire_quotes
from domain.reporting.snapshots import take_snapshot
from infra.logs import get_logger
from infra.wakeup_flag import PENDING_SECONDS
from worker import runtime, shutdown
from worker.alerts import send_alert
from worker.celery_app import (
    DISPATCH,
    PARTITIONS,
    QUOTE_EXPIRY,
    REPAIR_LINKS,
    RETENTION,
    STALE,
    STATS,
    app,
    settings,
)
from worker.metrics import summarized_dispatch

log = get_logger("crm.tasks")


@app.task(name=DISPATCH)
def dispatch() -> dict[str, int]:
    """Claim and deliver due notifications until none is due or the time budget is spent, then
    (with Redis) deliver the next commits' as they come until idle for CRM_DISPATCH_LINGER_SECONDS."""
    shutdown.install()
    with summarized_dispatch(), shutdown.finishing_batches():
        report = runtime.dispatch(settings, shutdown.worker_stopping)
    return {"claimed": report.claimed, "delivered": report.delivered, "retried": report.retried}


@worker_init.connect
def _dispatch_at_start(sender: Any, **_: Any) -> None:
    """A worker that starts with a backlog delivers it at once, not at the next commit or sweep
    (a wake-up published while no worker ran may have expired): published before the consumer
    starts, so it is the first message it takes."""
    try:
        app.send_task(DISPATCH, queue=settings.celery_queue, expires=PENDING_SECONDS, retry=False)
    except Exception as exc:  # the broker is down: the worker waits for it anyway
        log.warning("start-up dispatch not published", error=type(exc).__name__)


@worker_process_init.connect
def _warm(**_: Any) -> None:
    runtime.warm(settings)  # after runtime's own reset (connected first, on import)


@app.task(name=STATS)
def stats_snapshot() -> None:
    runtime.in_transaction(settings, lambda conn: take_snapshot(conn, utcnow()))


@app.task(name=STALE)
def stale_check() -> int:
    events: list[AlertEvent] = runtime.in_transaction(
        settings, lambda conn: check_stale(conn, settings.stale_after)
    )
    for event in events:
        send_alert(settings, event)
    return len(events)


@app.task(name=RETENTION)
def retention() -> dict[str, int]:
    """Drop (PostgreSQL: whole partitions) or delete read notifications and attempts older
    than CRM_RETENTION_DAYS, and old keys."""
    # PostgreSQL: the partitions ahead first (as the hourly task does), in their own transaction
    runtime.in_transaction(
        settings, lambda conn: ensure_partitions(conn, utcnow(), settings.partition_period)
    )
    # One period per transaction: each holds the outbox tables' lock only while it retires one.
    total: dict[str, int] = {}
    while True:
        removed = runtime.in_transaction(
            settings,
            lambda conn: purge_expired(
                conn, utcnow(), settings.retention, settings.idempotency_ttl, 1
            ),
        )
        total = {k: total.get(k, 0) + v for k, v in removed.as_dict().items()}
        if not removed.partitions:
            break
    log.info("retention removed", **total)
    # Rotated-out destination secrets past their overlap (the signer already ignores them).
    runtime.in_transaction(settings, drop_expired_secrets)
    # Received webhook-ids past the replay window (domain/destinations/inbound.py).
    runtime.in_transaction(settings, lambda conn: forget_old_receipts(conn, utcnow()))
    return total


@app.task(name=PARTITIONS)
def make_partitions() -> list[str]:
    """PostgreSQL, hourly: the outbox's partitions of this period and the next ones exist
    (domain/outbox/partitions.py); idempotent, a no-op once they do (and on SQLite)."""
    made: list[str] = runtime.in_transaction(
        settings, lambda conn: ensure_partitions(conn, utcnow(), settings.partition_period)
    )
    if made:
        log.info("outbox partitions made", partitions=made)
    return made


@app.task(name=QUOTE_EXPIRY)
def expire_due_quotes() -> int:
    """Expire open quotes past validUntil (or CRM_QUOTE_EXPIRE_DAYS when never priced), a batch
    per transaction until a batch comes back short."""
    total = 0
    directory = Directory(settings)  # env + registry, loaded once for the whole run

    async def batch(conn: AsyncConnection) -> int:
        routes = (await directory.current(conn.engine)).routes
        return await expire_quotes(conn, utcnow(), settings.quote_expire_after, routes)

    while True:
        expired = runtime.in_transaction(settings, batch)
        total += expired
        if expired < EXPIRY_BATCH:
            break
    if total:
        log.info("quotes expired", count=total)
    return total


@app.task(name=REPAIR_LINKS)
def repair_customer_links() -> list[dict[str, str]]:
    """Daily: link or create the Customer of every customer account that has none (a signup
    whose customer write failed); logs and returns what it linked."""

    async def repair(conn: AsyncConnection) -> list[Any]:
        routes = (await Directory(settings).refresh(conn)).routes  # env + registry
        return await repair_links(conn, routes)

    repaired = runtime.in_transaction(settings, repair)
    report = [
        {"action": r.action, "userId": str(r.user_id), "customerId": str(r.customer_id)}
        for r in repaired
    ]
    if report:
        log.info("customer links repaired", repaired=len(report), links=report)
    return report
