"""Best-effort wake-up of the dispatcher after a commit, off the request path.

A daemon thread tells the dispatcher at once after a commit (infra/wakeup_flag.py, one Redis
round trip): when no wake-up is pending and no dispatch is watching, it publishes a dispatch
task; otherwise it pushes to the wake list that a lingering dispatch waits on, or lets the
commit ride on the pending task. So under load a hot dispatch delivers each commit without a
Celery task, nothing waits for a coalescing window, and while no worker runs at most one
wake-up waits in the broker. If the broker is down the request never waits: the rows are
committed, and the beat sweep delivers them later.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from domain.outbox.rows import DISPATCH_TASK
from infra.broker import register_transports
from infra.settings import Settings
from infra.wakeup_flag import PENDING_SECONDS, WakeupFlag

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
        self._flag = WakeupFlag.from_settings(settings)
        # Without a flag (no Redis: the embedded broker), repeats are coalesced in time instead.
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
                self._wake()
            except Exception as exc:  # broker down: the sweep is the safety net
                now = time.monotonic()
                if now - self._last_warning > 30:
                    log.warning(
                        "dispatcher wake-up failed (%s); rows wait for the sweep",
                        type(exc).__name__,
                    )
                    self._last_warning = now
                time.sleep(0.5)

    def _wake(self) -> None:
        if self._flag is not None:
            try:
                publish = self._flag.wake()
            except Exception:
                pass  # the flag's Redis is down: wake, coalescing in time
            else:
                if not publish:
                    return  # a dispatch is pending or watching: it claims this commit's rows
                try:
                    self._publish()
                except Exception:
                    self._flag.clear()  # nothing was published: the next commit tries again
                    raise
                return
        self._publish()
        # Commits of the next few milliseconds ride on this wake-up.
        time.sleep(self.coalesce_seconds)

    def _publish(self) -> None:
        # Expires with the flag: a wake-up that waited that long is stale (the sweep ran).
        self._celery.send_task(
            DISPATCH_TASK, queue=self._queue, retry=False, expires=PENDING_SECONDS
        )

    def close(self) -> None:
        self._stopped = True
        self._pending.set()
        self._thread.join(timeout=2)
        if self._flag is not None:
            self._flag.close()
