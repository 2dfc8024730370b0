"""Best-effort wake-up of the dispatcher after a commit, off the request path.

A daemon thread publishes one dispatch task per burst of commits. If the broker is down the
request never waits: the rows are committed, and the beat sweep delivers them later.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from domain.outbox.rows import DISPATCH_TASK
from infra.broker import register_transports
from infra.settings import Settings

log = logging.getLogger("crm.wakeup")


class Waker:
    def __init__(self, settings: Settings) -> None:
        self._queue = settings.celery_queue
        register_transports()
        self._celery = Celery("crm-api", broker=settings.broker_url)
        self._celery.conf.update(
            broker_transport_options=settings.broker_transport_options,
            broker_connection_timeout=1,
            broker_connection_max_retries=0,
        )
        self.coalesce_seconds = 0.02
        self._pending = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="crm-wakeup", daemon=True)
        self._thread.start()
        self._last_warning = 0.0

    def __call__(self) -> None:
        self._pending.set()

    def _run(self) -> None:
        while not self._stopped:
            self._pending.wait()
            self._pending.clear()
            if self._stopped:
                return
            try:
                self._celery.send_task(DISPATCH_TASK, queue=self._queue, retry=False, expires=30)
                # Commits of the next few milliseconds ride on this wake-up: under load one
                # dispatch then claims a batch instead of a row per task.
                time.sleep(self.coalesce_seconds)
            except Exception as exc:  # broker down: the sweep is the safety net
                now = time.monotonic()
                if now - self._last_warning > 30:
                    log.warning(
                        "dispatcher wake-up failed (%s); rows wait for the sweep",
                        type(exc).__name__,
                    )
                    self._last_warning = now
                time.sleep(0.5)

    def close(self) -> None:
        self._stopped = True
        self._pending.set()
        self._thread.join(timeout=2)
