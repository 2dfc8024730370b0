"""Celery tasks, thin: each runs one domain function on this process's dispatcher.

Each is idempotent: running one twice does no harm. The per-process dispatcher lives in
worker/runtime.py, the graceful SIGTERM stop in worker/shutdown.py.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.registry import drop_expired_secrets
from domain.models import utcnow
from domain.outbox.alerts import AlertEvent, check_stale
from domain.outbox.retention import purge_expired
from domain.quotes.expiry import EXPIRY_BATCH, expire_quotes
from domain.reporting.snapshots import take_snapshot
from infra.logs import get_logger
from worker import runtime, shutdown
from worker.alerts import send_alert
from worker.celery_app import DISPATCH, QUOTE_EXPIRY, RETENTION, STALE, STATS, app, settings
from worker.metrics import summarized_dispatch

log = get_logger("crm.tasks")


@app.task(name=DISPATCH)
def dispatch() -> dict[str, int]:
    """Claim and deliver due notifications until none is due or the time budget is spent."""
    shutdown.install()
    d = runtime.dispatcher(settings)
    with summarized_dispatch(), shutdown.finishing_batches():
        report = d.run()
    return {"claimed": report.claimed, "delivered": report.delivered, "retried": report.retried}


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
    """Delete read notifications and attempts older than CRM_RETENTION_DAYS, and old keys."""
    removed = runtime.in_transaction(
        settings,
        lambda conn: purge_expired(conn, utcnow(), settings.retention, settings.idempotency_ttl),
    )
    log.info("retention removed", **removed.as_dict())
    # Rotated-out destination secrets past their overlap (the signer already ignores them).
    runtime.in_transaction(settings, drop_expired_secrets)
    return removed.as_dict()


@app.task(name=QUOTE_EXPIRY)
def expire_due_quotes() -> int:
    """Expire open quotes past validUntil (or CRM_QUOTE_EXPIRE_DAYS when never priced), a batch
    per transaction until a batch comes back short."""
    total = 0

    async def batch(conn: AsyncConnection) -> int:
        return await expire_quotes(conn, utcnow(), settings.quote_expire_after, settings.routes)

    while True:
        expired = runtime.in_transaction(settings, batch)
        total += expired
        if expired < EXPIRY_BATCH:
            break
    if total:
        log.info("quotes expired", count=total)
    return total
