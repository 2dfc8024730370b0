"""Celery tasks. Each opens its own session and is idempotent: running one twice does no harm."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy import delete, insert

from domain.models import ATTEMPTS, IDEMPOTENCY_KEYS, NOTIFICATIONS, SNAPSHOTS, utcnow
from domain.outbox.alerts import check_stale
from domain.reporting.stats import crm_stats, snapshot_row
from worker.alerts import send_alert
from worker.celery_app import DISPATCH, RETENTION, STALE, STATS, app, settings
from worker.dispatcher import Dispatcher
from worker.metrics import observe_dispatch

log = logging.getLogger("crm.tasks")
_dispatcher: Dispatcher | None = None


def dispatcher() -> Dispatcher:
    """Created in each worker process after the fork, never shared across processes."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher(settings)
    return _dispatcher


_busy = False


def _on_sigterm(_signum: int, _frame: Any) -> None:
    """Graceful stop of a pool process: finish the batches in hand, then exit.

    Idle, it exits at once. Busy, the dispatcher stops claiming; its batches are delivered
    and recorded (or released if interrupted), and the process exits when the task returns.
    """
    if _dispatcher is not None:
        _dispatcher.stopping = True
    if not _busy:
        _exit_now()


_pool_sigterm: Any = None  # billiard's own handler, restored to exit


def _exit_now() -> None:
    signal.signal(signal.SIGTERM, _pool_sigterm or signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm() -> None:
    """After billiard has set up the pool process (it resets signals after our init hooks)."""
    global _pool_sigterm
    if _pool_sigterm is None:
        _pool_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)


@worker_process_init.connect
def _fresh_after_fork(**_: Any) -> None:
    global _dispatcher, _pool_sigterm
    _dispatcher = None
    _pool_sigterm = None


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _dispatcher is not None:
        _dispatcher.close()


def _exit_after_task() -> None:
    """A stop came in while busy: leave as soon as this task has returned its result."""
    threading.Timer(0.5, _exit_now).start()


@app.task(name=DISPATCH)
def dispatch() -> dict[str, int]:
    """Claim and deliver due notifications until none is due or the time budget is spent."""
    global _busy
    _install_sigterm()
    d = dispatcher()
    _busy = True
    try:
        report = d.run()
    finally:
        _busy = False
        if d.stopping:
            _exit_after_task()
    observe_dispatch()  # worker health: crm_worker_last_dispatch_timestamp_seconds
    return {"claimed": report.claimed, "delivered": report.delivered, "retried": report.retried}


@app.task(name=STATS)
def stats_snapshot() -> None:
    d = dispatcher()

    async def run() -> None:
        async with d.engine.begin() as conn:
            stats = await crm_stats(conn)
            await conn.execute(insert(SNAPSHOTS).values(**snapshot_row(stats, utcnow())))

    d.loop.run_until_complete(run())


@app.task(name=STALE)
def stale_check() -> int:
    d = dispatcher()

    async def run() -> list[Any]:
        async with d.engine.begin() as conn:
            return await check_stale(conn, settings.stale_after)

    events = d.loop.run_until_complete(run())
    for event in events:
        send_alert(settings, event)
    return len(events)


@app.task(name=RETENTION)
def retention() -> dict[str, int]:
    """Delete read notifications and attempts older than CRM_RETENTION_DAYS, and old keys."""
    d = dispatcher()
    cutoff = utcnow() - settings.retention

    async def run() -> dict[str, int]:
        async with d.engine.begin() as conn:
            attempts = await conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.started_at < cutoff))
            notes = await conn.execute(
                delete(NOTIFICATIONS).where(
                    NOTIFICATIONS.c.read.is_(True), NOTIFICATIONS.c.read_at < cutoff
                )
            )
            keys = await conn.execute(
                delete(IDEMPOTENCY_KEYS).where(
                    IDEMPOTENCY_KEYS.c.created_at < utcnow() - settings.idempotency_ttl
                )
            )
        return {
            "attempts": attempts.rowcount,
            "notifications": notes.rowcount,
            "keys": keys.rowcount,
        }

    counts = d.loop.run_until_complete(run())
    log.info("retention removed %s", counts)
    return counts
