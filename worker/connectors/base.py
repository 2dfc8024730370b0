"""The one small interface every destination kind implements (issue 12).

Same outbox, claim, attempt log, retries, breaker and replay for every kind: only the last step
differs, how a claimed batch is handed over and what counts as acknowledged. A connector turns a
batch into the receiving system's own requests and answers, per notification, one `Sent`:
acknowledged, retry later (with a reason and an optional wait), or failed for good.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol

from domain.destinations.kinds import OptionError
from domain.outbox.delivery import Claimed
from infra.settings import Secret, Target

# Defined beside the per-kind rules (domain/destinations/kinds.py), which the API runs too.
__all__ = ["Connector", "OptionError", "Outcome", "Outgoing", "Sent"]


class Outcome(StrEnum):
    ACK = "ack"  # the receiving system has it (2xx, publisher confirm, PubAck, upsert result)
    RETRY = "retry"  # try again later: counts as an attempt, retried on the usual schedule
    FAIL = "fail"  # failed for good (a field error, a 4xx that waiting will not fix)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One claimed notification, ready to hand over."""

    notification: Claimed
    body: bytes  # the webhook JSON body (Claimed.payload()), what every kind carries or maps
    headers: Mapping[str, str]  # webhook-id, webhook-timestamp, webhook-signature


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one notification of a batch."""

    notification_id: uuid.UUID
    outcome: Outcome
    duration_ms: float
    status: int | None = None  # the remote's HTTP status, when it answered over HTTP
    error: str | None = None  # why (the vendor's own message) for RETRY and FAIL
    retry_after: float | None = None  # seconds the remote asked us to wait
    pause: bool = False  # the wait applies to the whole destination (rate limit, quota)
    disable: bool = False  # the destination is gone for good (Slack 410 channel_is_archived)
    response_excerpt: str | None = None  # first KiB of the answer, for the attempt log


def describe_error(exc: BaseException) -> str:
    """The attempt log's one-line reason for an exception (type and message, 300 chars)."""
    return f"{type(exc).__name__}: {exc}"[:300]


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a time.perf_counter() reading)."""
    return round((time.perf_counter() - started) * 1000.0, 1)


def sent_for(o: Outgoing, outcome: Outcome, began: float, error: str | None = None) -> Sent:
    """A Sent for `o`, timed from `began` (a time.perf_counter() reading)."""
    return Sent(o.notification.id, outcome, elapsed_ms(began), error=error)


class Connector(Protocol):
    """One per kind and worker process; `send` runs on the worker's event loop."""

    kind: ClassVar[str]

    @classmethod
    def validate(
        cls, url: str | None, options: Mapping[str, object], credentials: Mapping[str, Secret]
    ) -> None:
        """Raise OptionError for options the kind does not know (a mapping naming a field we do
        not have), missing credentials, or a URL of the wrong scheme. Run at create/patch."""

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        """Hand the batch over; exactly one Sent per Outgoing, in any order."""

    async def close(self) -> None:
        """Release connections (worker shutdown)."""
