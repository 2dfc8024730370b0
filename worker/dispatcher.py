"""Drain the outbox: per push target, claim a batch, deliver it concurrently, record it.

Each target drains in its own loop, so a slow or dead target never holds up the others.
Within a target, LANES claim-deliver-record loops run side by side, so one lane's database
round trips overlap another lane's deliveries and the HTTP pool never idles between batches
(bench/drain.py measures it).

No row is delivered twice because its lease ran out while it queued: a request's timeout starts
once it holds one of the `max_in_flight` slots, a claim is never bigger than its lease and the
slots can send (`delivery_batch_size`), and a row whose remaining lease can no longer cover a
whole request (lanes and targets share the slots) is given back unsent, not posted late.

Each target's guardrails (rate limit, in-flight cap, Retry-After pause, circuit breaker,
disable) are one object, worker/guardrails.py, consulted before each claim and each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.destinations.directory import Directory
from domain.destinations.kinds import egress_url
from domain.enums import TargetKind
from domain.models import utcnow
from domain.outbox.alerts import AlertEvent, record_dead_letters
from domain.outbox.delivery import (
    AttemptResult,
    Claimed,
    Recorded,
    claim_due,
    describe,
    record_results,
    release,
)
from domain.rules import delivery_batch_size
from infra.egress import EgressRefused, check_url
from infra.settings import DEFAULT_BATCH_SIZE, Secret, Settings, Target, async_url
from infra.webhooks import secret_key, webhook_headers
from worker.alerts import send_alert
from worker.connectors import Connectors
from worker.connectors.base import Outcome, Outgoing, Sent, describe_error, elapsed_ms
from worker.guardrails import Guardrails
from worker.http1 import Client
from worker.metrics import observe_recorded
from worker.transport import new_session, post

log = logging.getLogger("crm.dispatch")
LANES = 2
WEBHOOK = TargetKind.WEBHOOK.value


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (uvicorn[standard] brings it): the HTTP hot path is much cheaper."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class DrainReport:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: list[AttemptResult] = field(default_factory=list)
    alerts: list[asyncio.Future[None]] = field(default_factory=list)


class Dispatcher:
    """Per worker process: one event loop, one async engine, one pooled HTTP session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.loop = new_event_loop()
        self.engine: AsyncEngine = create_async_engine(
            async_url(settings.database_url),
            pool_size=4,
            max_overflow=4,
            json_deserializer=msgspec.json.decode,  # claimed rows' `data`: C, not json.loads
        )
        # The claim is one statement, atomic by itself: on PostgreSQL it runs in autocommit,
        # without the BEGIN and COMMIT round trips (two of a claim's three; issue 14).
        self._claim_engine: AsyncEngine = (
            self.engine
            if settings.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._session: Client | None = None
        self._slots: asyncio.Semaphore | None = None
        # The lease covers at least two request timeouts, so a claim always has room for a
        # first wave of requests started a few milliseconds after it.
        self.lease = max(settings.lease, timedelta(seconds=2 * settings.delivery_timeout))
        self.batch_size = delivery_batch_size(
            settings.batch_size,
            settings.max_in_flight,
            self.lease.total_seconds(),
            settings.delivery_timeout,
        )
        # The default adapts silently; a CRM_BATCH_SIZE the operator chose and we cut is logged.
        cut = self.batch_size != settings.batch_size and settings.batch_size != DEFAULT_BATCH_SIZE
        if self.lease != settings.lease or cut:
            log.warning(
                "claims of %d rows leased %.0f s (CRM_BATCH_SIZE %d, CRM_LEASE_SECONDS %.0f): "
                "a claim never holds more than its lease and CRM_MAX_IN_FLIGHT can send",
                self.batch_size,
                self.lease.total_seconds(),
                settings.batch_size,
                settings.lease.total_seconds(),
            )
        # Env and registry destinations, reloaded every few seconds (no restart to follow
        # a destination added, changed, disabled or re-keyed); signing keys per secret set.
        self.directory = Directory(settings)
        self._keys: dict[tuple[Secret, ...], list[bytes]] = {}
        self.egress_allow = settings.egress_allow
        self.guard = Guardrails(settings, self.engine)
        self.connectors = Connectors()  # kinds other than webhook, made on first use
        self.in_flight: set[uuid.UUID] = set()
        # Per target: set once every row of its latest batch has taken a slot (deliver_batch).
        self._rows_taken: dict[str, asyncio.Event] = {}
        self.stopping = False  # set on SIGTERM: finish the batches in hand, claim no more
        # The worker's long-lived objects (Celery, SQLAlchemy metadata) leave the collector's
        # generations, so collections triggered by the hot path's allocations stay cheap.
        gc.freeze()

    @property
    def session(self) -> Client:
        if self._session is None:
            self._session = new_session(self.settings.max_in_flight, self.egress_allow)
        return self._session

    @property
    def slots(self) -> asyncio.Semaphore:
        """The in-flight limit, shared by every target and lane of this process."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_in_flight)
        return self._slots

    def run(self, budget: float | None = None) -> DrainReport:
        return self.loop.run_until_complete(self.drain(budget))

    async def drain(self, budget: float | None = None) -> DrainReport:
        deadline = time.monotonic() + (budget or self.settings.dispatch_budget)
        snapshot = await self.directory.current(self.engine)
        reports = await asyncio.gather(
            *(self._drain_target(t, deadline) for t in snapshot.push_targets)
        )
        total = DrainReport()
        for r in reports:
            total.claimed += r.claimed
            total.delivered += r.delivered
            total.retried += r.retried
            total.failed.extend(r.failed)
        await asyncio.gather(*(a for r in reports for a in r.alerts))
        return total

    async def _drain_target(self, target: Target, deadline: float) -> DrainReport:
        """One lane; the others join once a full batch shows a backlog (a wake-up stays cheap)."""
        report = DrainReport()
        others: list[asyncio.Task[None]] = []

        def backlog() -> None:
            if not others:
                others.extend(
                    asyncio.create_task(self._drain_lane(target, deadline, report))
                    for _ in range(LANES - 1)
                )

        try:
            await self._drain_lane(target, deadline, report, backlog)
        finally:
            await asyncio.gather(*others)  # never leave a lane running on the loop
        return report

    async def _drain_lane(
        self,
        target: Target,
        deadline: float,
        report: DrainReport,
        on_full_batch: Callable[[], None] | None = None,
    ) -> None:
        """Claim-deliver-record until nothing is due, consulting the target's guardrails:
        nothing is claimed while it is disabled, paused or its breaker open, no more than its
        rate limit's tokens, one row for a breaker's probe."""
        s = self.settings
        guard = self.guard
        batch_size = self._batch_size(target)
        limited = False  # the last claim was cut short by the rate limit
        while time.monotonic() < deadline and not self.stopping:
            followed = await self._followed(target)
            if followed is None:
                break  # disabled or removed meanwhile: its rows wait
            target = followed
            if target.kind != WEBHOOK and self.connectors.get(target.kind) is None:
                break  # no connector for its kind in this worker (logged once): rows wait
            admission = await guard.admit(target)
            if not admission.allowed:
                break  # the rows wait, budget intact; a later sweep asks again
            want = min(batch_size, admission.limit or batch_size)
            granted, wait = await guard.take(target, want)
            if not granted:
                if limited:
                    guard.note_rate_limited(target)
                if admission.probe:
                    await guard.end_probe(target)
                await asyncio.sleep(max(0.0, min(wait, deadline - time.monotonic())))
                continue
            # Taken before the claim: the database's lease starts no earlier than this.
            lease_ends = time.monotonic() + self.lease.total_seconds()
            try:
                async with self._claim_engine.begin() as conn:
                    batch = await claim_due(
                        conn, self.worker_id, [target.name], granted, self.lease
                    )
                if len(batch) < granted:
                    await guard.refund(target, granted - len(batch))
                limited = granted < want and len(batch) == granted
                if not batch:
                    break
                if on_full_batch is not None and len(batch) == batch_size:
                    on_full_batch()
                recorded, alerts = await self._deliver_and_record(target, batch, lease_ends)
            finally:
                if admission.probe:
                    await guard.end_probe(target)
            _add(report, batch, recorded)
            loop = asyncio.get_running_loop()
            for alert in alerts:
                # Log line and Slack-compatible POST off the loop: other lanes keep delivering.
                report.alerts.append(loop.run_in_executor(None, send_alert, s, alert))
            if len(batch) < granted or admission.probe:
                break

    async def _deliver_and_record(
        self, target: Target, batch: Sequence[Claimed], lease_ends: float
    ) -> tuple[Recorded, list[AlertEvent]]:
        """Deliver a claimed batch and record its outcome (and the guardrails') in one commit."""
        s = self.settings
        self.in_flight.update(c.id for c in batch)
        alerts: list[AlertEvent] = []
        try:
            if target.kind == WEBHOOK:
                results = await self.deliver_batch(target, batch, lease_ends)
            else:
                results = await self.hand_over(target, batch, lease_ends)
            unsent = {c.id for c in batch} - {r.notification.id for r in results}
            async with self.engine.begin() as conn:
                recorded = await record_results(conn, results, s.retry_policy)
                if unsent:
                    await release(conn, self.worker_id, list(unsent))
                    log.info(
                        "%d row(s) given back unsent (lease ran short or target paused)",
                        len(unsent),
                    )
                if recorded.failed:
                    # The alert row commits with the FAILED rows: no dead letter unannounced.
                    ids = [str(r.notification.id) for r in recorded.failed]
                    alerts.append(
                        await record_dead_letters(
                            conn, target.name, ids, describe(recorded.failed[-1])
                        )
                    )
                alerts.extend(await self.guard.record(conn, target, results))
        except BaseException:
            # Interrupted before the outcome was written: give the rows back at once
            # (another worker resends them, same webhook-id) instead of leaving the lease.
            await asyncio.shield(self.release_in_flight())
            raise
        finally:
            self.in_flight.difference_update(c.id for c in batch)
        return recorded, alerts

    async def deliver_batch(
        self, target: Target, batch: Sequence[Claimed], lease_ends: float
    ) -> list[AttemptResult]:
        """Post the batch, at most `max_in_flight` at a time; rows not sent have no result.

        Each request is signed and timed from the moment it holds a slot; one that could
        not finish before `lease_ends` (monotonic) is not started at all.
        """
        assert target.url is not None
        keys = self._keys_for(target)
        url = target.url
        timeout = self.settings.delivery_timeout

        guard = self.guard
        target_cap = guard.slots(target)
        target_slots = target_cap or contextlib.nullcontext()
        session, egress_allow, slots = self.session, self.egress_allow, self.slots
        results: list[AttemptResult | None] = [None] * len(batch)
        rows = iter(enumerate(batch))
        # Batches of one target take slots in claim order, as one queue: this batch's senders
        # start once every row of the target's previous batch holds (or held) a slot, so a
        # later lane's rows never overtake an earlier claim's (HIGH before NORMAL).
        previous = self._rows_taken.get(target.name)
        taken = self._rows_taken[target.name] = asyncio.Event()

        async def sender() -> None:
            """Post rows one at a time, each holding a slot; whoever holds a slot takes the
            next row, so requests still leave in claim (priority) order."""
            while True:
                async with target_slots, slots:
                    i, n = next(rows, (-1, None))
                    if n is None:
                        taken.set()
                        return
                    if time.monotonic() + timeout > lease_ends:
                        continue  # another worker may claim it once the lease ends: not ours
                    if not await guard.may_send(target):
                        continue  # paused or breaker opened by an earlier answer: given back
                    body = n.body()
                    started_at = utcnow()
                    headers = _signed_headers(keys, n, body, int(time.time()))
                    reply = await post(session, url, body, headers, timeout, egress_allow)
                result = AttemptResult(
                    n,
                    started_at,
                    reply.duration_ms,
                    reply.status,
                    reply.error,
                    reply.body,
                    reply.retry_after,
                )
                guard.observe(target, result)
                results[i] = result

        # A sender per slot this batch can use (not a task per row): fewer tasks to schedule.
        cap = self.settings.max_in_flight if target_cap is None else target.max_in_flight or 1
        try:
            if previous is not None:
                await previous.wait()
            await asyncio.gather(*(sender() for _ in range(min(len(batch), cap))))
        finally:
            taken.set()
            if self._rows_taken.get(target.name) is taken:
                del self._rows_taken[target.name]
        return [r for r in results if r is not None]

    async def hand_over(
        self, target: Target, batch: Sequence[Claimed], lease_ends: float
    ) -> list[AttemptResult]:
        """A connector kind: the whole batch in one `send`, holding one slot, within one
        request timeout; each notification carries the signed webhook headers all the same."""
        connector = self.connectors.get(target.kind)
        assert connector is not None  # checked before the claim
        keys = self._keys_for(target)
        timeout = self.settings.delivery_timeout
        target_slots = self.guard.slots(target) or contextlib.nullcontext()
        async with target_slots, self.slots:
            if time.monotonic() + timeout > lease_ends or not await self.guard.may_send(target):
                return []  # given back unsent, as a webhook's
            started_at, now = utcnow(), int(time.time())
            outgoing = []
            for n in batch:
                body = n.body()
                outgoing.append(Outgoing(n, body, _signed_headers(keys, n, body, now)))
            began = time.perf_counter()
            try:
                await self._check_egress(target)
                async with asyncio.timeout(timeout):
                    sent = await connector.send(target, outgoing)
            except EgressRefused as exc:
                sent = [
                    _lost(n, f"connection error: egress refused: {exc.reason}", began)
                    for n in batch
                ]
            except TimeoutError:
                sent = [_lost(n, "timeout", began) for n in batch]
            except Exception as exc:  # a connector bug or a client error it did not map
                log.exception("%s connector failed on %s", target.kind, target.name)
                sent = [_lost(n, describe_error(exc), began) for n in batch]
        by_id = {c.id: c for c in batch}
        results = [
            AttemptResult(
                by_id[s.notification_id],
                started_at,
                s.duration_ms,
                s.status,
                s.error,
                s.response_excerpt,
                s.retry_after,
                outcome=s.outcome.value,
                pause=s.pause,
                disable=s.disable,
            )
            for s in sent
            if s.notification_id in by_id
        ]
        for r in results:
            self.guard.observe(target, r)
        return results

    async def _check_egress(self, target: Target) -> None:
        """A connector's host obeys the webhooks' egress rule (CRM_EGRESS_ALLOW aside): a
        broker's amqp:// or nats:// address is judged as the same host and port over http.
        The connector connects after this check, by name (a resolver pinning the checked
        address, as worker/http1.py's for webhooks, is not available in aio-pika or nats-py)."""
        assert target.url is not None
        url = target.url
        if urlsplit(url).scheme not in ("http", "https"):
            url = egress_url(url)
        await asyncio.to_thread(check_url, url, self.egress_allow)

    async def _followed(self, target: Target) -> Target | None:
        """The target as the directory has it now (url, secrets), None if no longer pushed."""
        snapshot = await self.directory.current(self.engine)
        return next((t for t in snapshot.push_targets if t.name == target.name), None)

    def _batch_size(self, target: Target) -> int:
        """A target with its own in-flight cap claims what that cap can send within the lease."""
        s = self.settings
        cap = min(target.max_in_flight or s.max_in_flight, s.max_in_flight)
        return delivery_batch_size(
            self.batch_size, cap, self.lease.total_seconds(), s.delivery_timeout
        )

    def _keys_for(self, target: Target) -> list[bytes]:
        keys = self._keys.get(target.secrets)
        if keys is None:
            if len(self._keys) > 256:  # rotations over a long life: keep the cache small
                self._keys.clear()
            keys = self._keys[target.secrets] = [secret_key(s) for s in target.secrets]
        return keys

    async def release_in_flight(self) -> int:
        """Give claimed rows back at once (graceful shutdown)."""
        ids = list(self.in_flight)
        async with self.engine.begin() as conn:
            return await release(conn, self.worker_id, ids)

    def close(self) -> None:
        async def _close() -> None:
            if self._session is not None:
                await self._session.close()
            await self.connectors.close()
            await self.guard.close()
            await self.engine.dispose()

        self.loop.run_until_complete(_close())
        self.loop.close()


def _lost(n: Claimed, error: str, began: float) -> Sent:
    return Sent(n.id, Outcome.RETRY, elapsed_ms(began), error=error)


def _signed_headers(keys: list[bytes], n: Claimed, body: bytes, now: int) -> dict[str, str]:
    """The Standard Webhooks headers every kind carries, and the request id to follow it by."""
    headers = webhook_headers(keys, str(n.id), now, body)
    if n.request_id:
        headers["x-request-id"] = n.request_id
    return headers


def _add(report: DrainReport, batch: Sequence[Claimed], recorded: Recorded) -> None:
    report.claimed += len(batch)
    report.delivered += len(recorded.delivered)
    report.retried += len(recorded.retried)
    report.failed.extend(recorded.failed)
    observe_recorded(recorded)  # counters, latency, one log line per outcome (worker/metrics.py)
