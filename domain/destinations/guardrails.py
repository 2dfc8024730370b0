"""The guardrails of one destination, as pure rules: what an answer means, the circuit breaker,
the token bucket's arithmetic and when a destination is disabled.

No I/O here. worker/guardrails.py keeps the state these rules fold (in Redis, shared by every
worker process, or in memory when Redis is down) and the dispatcher consults it.

- **Answers**: a 2xx is a success; 5xx, timeouts and connection errors are the failures that
  mean "down" and count toward the breaker; a 4xx other than 408/409/425/429 means
  "misconfigured" and is not retried (waiting does not fix it); 410 Gone disables the
  destination; a 429/503 naming a Retry-After pauses the whole destination.
- **Breaker** (GitLab's rule for web hooks): 5 consecutive failures open it for 1 min; each
  failed probe doubles the pause, up to 24 h; when a pause ends, one probe at a time; one
  success closes it.
- **Token bucket**: `rate` tokens a second, holding at most `capacity(rate)` (a fifth of a
  second's worth, at least one), so a limit of 5/s sends one every 200 ms instead of bursts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

BREAKER_THRESHOLD = 5
BREAKER_PAUSE = 60.0
BREAKER_MAX_PAUSE = 24 * 3600.0
RETRY_AFTER_CAP = 3600.0
# 4xx answers worth retrying: timeout, conflict, too early, too many requests.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})
PAUSING_STATUSES = frozenset({429, 503})
BURST_SECONDS = 0.2


class Answer(enum.StrEnum):
    SUCCESS = "success"
    DOWN = "down"  # 5xx, timeout, connection error: counts toward the breaker
    RETRY = "retry"  # 3xx, 408/409/425/429, 503 with Retry-After: retried, breaker untouched
    PERMANENT = "permanent"  # other 4xx: the row fails after this attempt
    GONE = "gone"  # 410: the row fails and the destination is disabled


def classify(http_status: int | None, retry_after: float | None = None) -> Answer:
    if http_status is None:
        return Answer.DOWN
    if 200 <= http_status < 300:
        return Answer.SUCCESS
    if http_status == 410:
        return Answer.GONE
    if http_status in PAUSING_STATUSES and retry_after is not None:
        return Answer.RETRY
    if http_status >= 500:
        return Answer.DOWN
    if 400 <= http_status < 500 and http_status not in RETRYABLE_4XX:
        return Answer.PERMANENT
    return Answer.RETRY


def is_permanent(http_status: int | None) -> bool:
    """A misconfigured receiver's answer: not retried (the row fails at once)."""
    return classify(http_status) in (Answer.PERMANENT, Answer.GONE)


def pause_for(http_status: int | None, retry_after: float | None) -> float | None:
    """Seconds a Retry-After pauses the whole destination (429/503 only, capped at 1 h)."""
    if http_status not in PAUSING_STATUSES or retry_after is None:
        return None
    return min(max(retry_after, 0.0), RETRY_AFTER_CAP)


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the pause is over: one probe at a time


@dataclass(frozen=True, slots=True)
class Breaker:
    """A destination's shared state: the breaker and the Retry-After pause (epoch seconds)."""

    failures: int = 0  # consecutive failures of the DOWN kind
    open_until: float | None = None  # set while the breaker is open or probing
    trips: int = 0  # failed probes since it opened: the pause doubles with each
    paused_until: float | None = None  # a Retry-After pause, apart from the breaker

    def state(self, now: float) -> BreakerState:
        if self.open_until is None:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now < self.open_until else BreakerState.HALF_OPEN

    def waits_until(self, now: float) -> float | None:
        """When the destination may be tried again, if it may not be now."""
        times = [t for t in (self.paused_until,) if t is not None and t > now]
        if self.state(now) is BreakerState.OPEN and self.open_until is not None:
            times.append(self.open_until)
        return max(times) if times else None

    def after(
        self,
        answer: Answer,
        now: float,
        pause: float | None = None,
        threshold: int = BREAKER_THRESHOLD,
        base: float = BREAKER_PAUSE,
    ) -> Breaker:
        """The state after one answer (`pause`: a Retry-After pause it asked for)."""
        s = self
        if pause is not None:
            s = replace(s, paused_until=max(s.paused_until or 0.0, now + pause))
        if answer is Answer.SUCCESS:
            return replace(s, failures=0, open_until=None, trips=0)
        if answer is not Answer.DOWN:
            return s
        if s.open_until is not None:
            if now < s.open_until:
                return replace(s, failures=s.failures + 1)  # sent before it opened: no news
            trips = s.trips + 1  # a failed probe
            return replace(
                s, failures=s.failures + 1, trips=trips, open_until=now + breaker_pause(trips, base)
            )
        failures = s.failures + 1
        if failures >= threshold:
            return replace(s, failures=failures, trips=0, open_until=now + base)
        return replace(s, failures=failures)


def breaker_pause(trips: int, base: float = BREAKER_PAUSE) -> float:
    """The pause after `trips` failed probes: base, doubling, capped at 24 h."""
    return min(base * 2 ** min(trips, 32), BREAKER_MAX_PAUSE)


def capacity(rate: float) -> float:
    """The bucket's size: a fifth of a second of tokens, at least one."""
    return max(1.0, rate * BURST_SECONDS)


def take_tokens(
    tokens: float, last: float, now: float, rate: float, want: int
) -> tuple[int, float, float]:
    """Refill the bucket since `last`, take up to `want` whole tokens.

    Returns (granted, tokens left, seconds until the next whole token when none was granted).
    The Redis script in infra/ratelimit.py runs the same arithmetic atomically.
    """
    tokens = min(capacity(rate), tokens + max(0.0, now - last) * rate)
    granted = min(want, int(tokens))
    tokens -= granted
    wait = 0.0 if granted else (1.0 - tokens) / rate
    return granted, tokens, wait


def auto_disable_reason(
    answer: Answer,
    http_status: int | str | None,  # a connector's answer comes described (no HTTP status)
    failing_since: datetime | None,
    now: datetime,
    after: timedelta,
) -> str | None:
    """Why a destination is disabled now, or None: 410 Gone, or failing with no success for
    `after` (CRM_AUTO_DISABLE_AFTER_HOURS)."""
    if answer is Answer.GONE:
        if isinstance(http_status, str):
            return f"the receiver is gone for good: {http_status}"
        return f"the receiver answered HTTP {http_status} Gone"
    if answer is not Answer.SUCCESS and failing_since is not None and now - failing_since >= after:
        hours = after.total_seconds() / 3600
        return f"failing without a single success for {hours:g} h (since {failing_since:%Y-%m-%d %H:%M} UTC)"
    return None
