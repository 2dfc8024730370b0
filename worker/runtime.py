"""The per-process dispatcher: one event loop, engine and HTTP session per pool process.

Created lazily in each pool process after the fork (a loop or a pooled connection shared across
a fork breaks both sides), dropped when a process is forked, closed when the process exits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.ext.asyncio import AsyncConnection

from infra.settings import Settings
from worker.dispatcher import Dispatcher

T = TypeVar("T")
_dispatcher: Dispatcher | None = None


def dispatcher(settings: Settings) -> Dispatcher:
    """This process's dispatcher, created on first use."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = Dispatcher(settings)
    return _dispatcher


def current() -> Dispatcher | None:
    """The dispatcher if this process has made one (a signal handler must not create it)."""
    return _dispatcher


def in_transaction(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run one domain function in one transaction on this process's engine and loop."""
    d = dispatcher(settings)

    async def run() -> T:
        async with d.engine.begin() as conn:
            return await work(conn)

    return d.loop.run_until_complete(run())


@worker_process_init.connect
def _fresh_after_fork(**_: Any) -> None:
    global _dispatcher
    _dispatcher = None


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    if _dispatcher is not None:
        _dispatcher.close()
