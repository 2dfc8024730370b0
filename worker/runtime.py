"""The per-process dispatcher: one event loop, engine and HTTP session per pool process.

Created lazily in each pool process after the fork (a loop or a pooled connection shared across
a fork breaks both sides), dropped when a process is forked, closed when the process exits.
`dispatch` is one dispatch task's work: drain, then linger on the wake list while commits keep
coming (the protocol and its races: infra/wakeup_flag.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from celery.signals import worker_process_init, worker_process_shutdown
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.settings import Settings
from infra.wakeup_flag import WakeupWatch
from worker.dispatcher import Dispatcher, DrainReport
from worker.metrics import LAST_DISPATCH

log = logging.getLogger("crm.dispatch")
T = TypeVar("T")
HOT_DRAINS = 2  # drains a lingering dispatch runs side by side
_dispatcher: Dispatcher | None = None
_flag: WakeupWatch | None = None
_flag_made = False


def dispatcher(settings: Settings) -> Dispatcher:
    """This process's dispatcher, created on first use."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher(settings)
    return _dispatcher


def wakeup_watch(settings: Settings) -> WakeupWatch | None:
    """This process's client of the wake-up flag and list (None without Redis)."""
    global _flag, _flag_made
    if not _flag_made:
        _flag, _flag_made = WakeupWatch.from_settings(settings), True
    return _flag


def dispatch(settings: Settings, worker_stopping: Callable[[], bool]) -> DrainReport:
    """Drain until nothing is due; with Redis, then linger for the next commits' wake-ups
    (until idle for CRM_DISPATCH_LINGER_SECONDS, the budget is spent or the worker stops)."""
    d = dispatcher(settings)
    watch = wakeup_watch(settings)
    if watch is None:
        return d.run()
    linger = settings.dispatch_linger
    return d.loop.run_until_complete(drain_hot(d, watch, linger, worker_stopping))


async def drain_hot(
    d: Dispatcher, watch: WakeupWatch, linger: float, worker_stopping: Callable[[], bool]
) -> DrainReport:
    """Take the watch, drain, linger, leave, claim once more (infra/wakeup_flag.py's protocol);
    without the watch (another dispatch has it, or Redis is down), drain once."""
    deadline = time.monotonic() + d.settings.dispatch_budget
    watching = False
    try:
        if linger > 0:
            watching = await watch.take()  # before the first claim: pushes from now on are ours
        else:
            await watch.clear()  # before the claim: a commit from now on publishes a wake-up
    except Exception as exc:  # Redis is down: drain once; the flag expires by itself
        log.warning("wake-up flag unavailable (%s)", type(exc).__name__)
    total = DrainReport()
    if not watching:
        _add(total, await d.drain(_left(deadline)))
        return total
    still_ours = True
    try:
        _add(total, await d.drain(_left(deadline)))
        still_ours = await _linger(d, watch, linger, deadline, total, worker_stopping)
    except RedisError as exc:  # Redis went away: stop watching, the sweep is the safety net
        log.warning("wake-up list unavailable (%s)", type(exc).__name__)
    finally:
        if still_ours:
            try:
                await watch.leave()
            except RedisError as exc:
                log.warning("wake-up flag not cleared (%s); it expires by itself", exc)
    if not d.stopping:
        # After the delete: sees every commit that pushed a wake-up while this one watched.
        _add(total, await d.drain(_left(deadline)))
    return total


async def _linger(
    d: Dispatcher,
    watch: WakeupWatch,
    linger: float,
    deadline: float,
    total: DrainReport,
    worker_stopping: Callable[[], bool],
) -> bool:
    """Drain on each wake-up until idle for `linger` s, the budget is spent or the worker stops
    (checked between waits, one STEP at most); False when the watch was lost (expired, or taken
    over by another dispatch).

    A wake-up that comes while a drain runs starts another at once (up to HOT_DRAINS): its claim
    sees the new commit, instead of waiting for the running drain's requests and records. Every
    CRM_SWEEP_SECONDS without one it drains anyway, as beat's sweep would (retries come due
    without a commit; a sweep may wait behind it for the pool process), without counting as
    activity.
    """
    running: set[asyncio.Task[DrainReport]] = set()
    waiter: asyncio.Task[bool] | None = None
    woken = False
    idle_until = time.monotonic() + linger
    sweep = d.settings.sweep_seconds
    next_sweep = time.monotonic() + sweep
    try:
        while not d.stopping and not worker_stopping():
            now = time.monotonic()
            if now >= deadline or (not running and not woken and now >= idle_until):
                break
            if woken and len(running) < HOT_DRAINS:
                woken, next_sweep = False, now + sweep
                running.add(asyncio.create_task(d.drain(_left(deadline))))
            if waiter is None and not woken:
                if not await watch.keep():
                    return False
                # While drains run, idleness is not judged: wait a whole step.
                until = min(deadline if running else min(idle_until, deadline), next_sweep)
                waiter = asyncio.create_task(watch.wait(until - now))
            done, _ = await asyncio.wait(
                running | ({waiter} if waiter else set()), return_when=asyncio.FIRST_COMPLETED
            )
            for task in [t for t in running if t in done]:
                running.discard(task)
                report = task.result()
                _add(total, report)
                LAST_DISPATCH.set_to_current_time()  # alive, though the task goes on
                if report.claimed:
                    idle_until = time.monotonic() + linger
            if waiter in done:
                woken, waiter = waiter.result(), None
                if woken:
                    idle_until = time.monotonic() + linger
                elif time.monotonic() >= next_sweep:
                    woken = True  # the sweep's drain
    finally:
        # Never leave a drain or a read running on the loop (a wait ends within one STEP).
        await asyncio.gather(*running, *([waiter] if waiter else []), return_exceptions=True)
    return True


def _left(deadline: float) -> float:
    """The budget left, and at least a moment for a claim (a spent budget still claims once)."""
    return max(deadline - time.monotonic(), 0.5)


def _add(total: DrainReport, report: DrainReport) -> None:
    total.claimed += report.claimed
    total.delivered += report.delivered
    total.retried += report.retried
    total.failed.extend(report.failed)


def current() -> Dispatcher | None:
    """The dispatcher if this process has made one (a signal handler must not create it)."""
    return _dispatcher


def warm(settings: Settings) -> None:
    """Make this process's dispatcher and open one database connection before any task comes:
    a worker that starts with a backlog delivers its first row sooner (best effort)."""
    d = dispatcher(settings)

    async def connect() -> None:
        async with d.engine.connect():
            pass

    try:
        # Bounded: Celery gives a pool process a few seconds to come up.
        d.loop.run_until_complete(asyncio.wait_for(connect(), 2))
    except Exception as exc:  # the database is down: the first dispatch finds out and retries
        log.warning("dispatcher warm-up failed (%s)", type(exc).__name__)


def in_transaction(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run one domain function in one transaction on this process's engine and loop."""
    d = dispatcher(settings)

    async def run() -> T:
        async with d.engine.begin() as conn:
            return await work(conn)

    return d.loop.run_until_complete(run())


@worker_process_init.connect
def _fresh_after_fork(**_: Any) -> None:
    global _dispatcher, _flag, _flag_made
    _dispatcher, _flag, _flag_made = None, None, False


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _dispatcher is not None:
        if _flag is not None:
            _dispatcher.loop.run_until_complete(_flag.close())
        _dispatcher.close()
