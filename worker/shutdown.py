"""Graceful stop of a pool process on SIGTERM: finish the batches in hand, then exit.

Idle, it exits at once. Busy, the dispatcher stops claiming; its batches are delivered and
recorded (or released if interrupted), and the process exits when the task returns.

When only the worker's main process is signalled (Docker, systemd `KillMode=mixed`), Celery
waits for the running tasks: a lingering dispatch learns of it from one byte of memory the
main process shares with its pool processes (`worker_stopping`), and returns.
"""

from __future__ import annotations

import mmap
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.signals import worker_process_init, worker_shutting_down

from worker import runtime

_busy = False
_pool_sigterm: Any = None  # billiard's own handler, restored to exit
# Mapped on import in the main process, before the pool forks: shared with every pool process.
_worker_stopping = mmap.mmap(-1, 1)


def _on_sigterm(_signum: int, _frame: Any) -> None:
    d = runtime.current()
    if d is not None:
        d.stopping = True
    if not _busy:
        _exit_now()


def _exit_now() -> None:
    signal.signal(signal.SIGTERM, _pool_sigterm or signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def install() -> None:
    """Called from the task: billiard resets signals after the process-init hooks have run."""
    global _pool_sigterm
    if _pool_sigterm is None:
        _pool_sigterm = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)


@contextmanager
def finishing_batches() -> Iterator[None]:
    """While the body runs, a SIGTERM only stops claiming; the process leaves once it is done."""
    global _busy
    _busy = True
    try:
        yield
    finally:
        _busy = False
        d = runtime.current()
        if d is not None and d.stopping:
            # Leave as soon as the task has returned its result.
            threading.Timer(0.5, _exit_now).start()


@worker_process_init.connect
def _fresh_after_fork(**_: Any) -> None:
    global _pool_sigterm
    _pool_sigterm = None


@worker_shutting_down.connect
def _mark_worker_stopping(**_: Any) -> None:
    _worker_stopping[0] = 1


def worker_stopping() -> bool:
    """Whether this worker's main process has begun its shutdown (warm or cold)."""
    return _worker_stopping[0] == 1
