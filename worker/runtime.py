"""The per-process dispatcher: one event loop, engine and HTTP session per pool process.

Created lazily in each pool process after the fork (a loop or a pooled connection shared across
a fork breaks both sides), dropped when a process is forked, closed when the process exits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.settings import Settings
from infra.wakeup_flag import WakeupFlag
from worker.dispatcher import Dispatcher

log = logging.getLogger("crm.dispatch")
T = TypeVar("T")
_dispatcher: Dispatcher | None = None
_flag: WakeupFlag | None = None
_flag_made = False


def dispatcher(settings: Settings) -> Dispatcher:
    """This process's dispatcher, created on first use."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher(settings)
    return _dispatcher


def wakeup_flag(settings: Settings) -> WakeupFlag | None:
    """This process's client of the "wake-up pending" flag (None without Redis)."""
    global _flag, _flag_made
    if not _flag_made:
        _flag, _flag_made = WakeupFlag.from_settings(settings), True
    return _flag


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
        _dispatcher.close()
