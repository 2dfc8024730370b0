"""The guardrails' pure rules: answers, the circuit breaker, the token bucket, auto-disable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.destinations.guardrails import (
    Answer,
    Breaker,
    BreakerState,
    auto_disable_reason,
    breaker_pause,
    classify,
    is_permanent,
    pause_for,
    take_tokens,
)
from domain.destinations.state import decode_breaker, encode_breaker


@pytest.mark.parametrize(
    ("status", "retry_after", "answer"),
    [
        (200, None, Answer.SUCCESS),
        (204, None, Answer.SUCCESS),
        (500, None, Answer.DOWN),
        (503, None, Answer.DOWN),
        (None, None, Answer.DOWN),  # timeout or connection error
        (503, 3.0, Answer.RETRY),
        (429, None, Answer.RETRY),
        (408, None, Answer.RETRY),
        (409, None, Answer.RETRY),
        (425, None, Answer.RETRY),
        (302, None, Answer.RETRY),
        (400, None, Answer.PERMANENT),
        (401, None, Answer.PERMANENT),
        (404, None, Answer.PERMANENT),
        (410, None, Answer.GONE),
    ],
)
def test_each_answer_is_classified(status, retry_after, answer):
    assert classify(status, retry_after) is answer


def test_only_4xx_other_than_408_409_425_429_are_permanent():
    assert [s for s in range(400, 452) if not is_permanent(s)] == [408, 409, 425, 429]
    assert not any(is_permanent(s) for s in (200, 302, 500, 503, None))


def test_retry_after_pauses_on_429_and_503_only_capped_at_an_hour():
    assert pause_for(429, 3) == 3 and pause_for(503, 7200) == 3600
    assert pause_for(500, 3) is None and pause_for(429, None) is None


def _fail(b: Breaker, n: int, now: float) -> Breaker:
    for _ in range(n):
        b = b.after(Answer.DOWN, now)
    return b


def test_the_breaker_opens_after_five_consecutive_failures_for_a_minute():
    b = _fail(Breaker(), 4, 1000.0)
    assert b.state(1000.0) is BreakerState.CLOSED
    b = b.after(Answer.DOWN, 1000.0)
    assert b.state(1000.0) is BreakerState.OPEN and b.open_until == 1060.0
    assert b.waits_until(1000.0) == 1060.0
    assert b.state(1060.0) is BreakerState.HALF_OPEN and b.waits_until(1060.0) is None


def test_a_success_resets_the_count_and_4xx_or_retry_answers_leave_it():
    b = _fail(Breaker(), 4, 0.0).after(Answer.SUCCESS, 0.0)
    assert b == Breaker()
    b = _fail(Breaker(), 4, 0.0).after(Answer.PERMANENT, 0.0).after(Answer.RETRY, 0.0)
    assert b.failures == 4 and b.state(0.0) is BreakerState.CLOSED


def test_each_failed_probe_doubles_the_pause_up_to_a_day():
    b = _fail(Breaker(), 5, 0.0)  # open until 60
    b = b.after(Answer.DOWN, 60.0)  # probe fails: 120 s
    assert b.open_until == 180.0 and b.trips == 1
    b = b.after(Answer.DOWN, 180.0)  # 240 s
    assert b.open_until == 420.0
    assert breaker_pause(3) == 480 and breaker_pause(20) == 24 * 3600 == breaker_pause(500)


def test_failures_of_requests_sent_before_it_opened_do_not_extend_the_pause():
    b = _fail(Breaker(), 5, 0.0)
    assert _fail(b, 3, 10.0).open_until == 60.0


def test_one_good_probe_closes_it():
    b = _fail(Breaker(), 5, 0.0).after(Answer.DOWN, 60.0).after(Answer.SUCCESS, 200.0)
    assert b.state(200.0) is BreakerState.CLOSED and b == Breaker()


def test_a_retry_after_pause_is_kept_apart_and_only_lengthened():
    b = Breaker().after(Answer.RETRY, 100.0, pause=3.0)
    assert b.state(100.0) is BreakerState.CLOSED and b.waits_until(100.0) == 103.0
    assert b.after(Answer.RETRY, 100.5, pause=1.0).paused_until == 103.0
    assert b.waits_until(103.0) is None


def test_the_breaker_round_trips_through_its_redis_hash():
    b = _fail(Breaker(), 5, 1e12)
    assert decode_breaker(encode_breaker(b)) == b
    assert encode_breaker(Breaker()) == {}


def test_the_bucket_grants_what_it_holds_and_says_how_long_to_wait():
    # 5/s holds one token (a fifth of a second's worth): one now, the next 200 ms later.
    granted, left, wait = take_tokens(1.0, 0.0, 0.0, 5.0, want=20)
    assert (granted, left, wait) == (1, 0.0, 0.0)
    granted, left, wait = take_tokens(left, 0.0, 0.1, 5.0, want=20)
    assert granted == 0 and wait == pytest.approx(0.1)
    granted, _, _ = take_tokens(0.0, 0.0, 0.2, 5.0, want=20)
    assert granted == 1


def test_the_bucket_caps_its_burst_and_paces_at_the_rate():
    granted, left, _ = take_tokens(0.0, 0.0, 60.0, 1000.0, want=500)
    assert granted == 200 and left == 0  # a fifth of a second's worth at most
    sent, tokens, last = 0, 0.0, 0.0
    for i in range(1, 1001):  # asking every 10 ms for 10 s
        granted, tokens, _ = take_tokens(tokens, last, i / 100, 5.0, want=20)
        sent, last = sent + granted, i / 100
    assert 48 <= sent <= 50  # never more than the rate allows


def test_auto_disable_after_410_or_a_long_failing_streak():
    now = datetime(2026, 1, 10, tzinfo=UTC)
    week = timedelta(hours=120)
    assert "410" in (auto_disable_reason(Answer.GONE, 410, None, now, week) or "")
    assert auto_disable_reason(Answer.DOWN, 500, now - timedelta(hours=119), now, week) is None
    reason = auto_disable_reason(Answer.DOWN, 500, now - timedelta(hours=121), now, week)
    assert reason is not None and "120 h" in reason
    assert auto_disable_reason(Answer.SUCCESS, 200, now - timedelta(days=9), now, week) is None
