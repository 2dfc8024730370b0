"""Retry-After, the batch-size rule and redirects: what the delivery client makes of an answer."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from domain.rules import RetryPolicy, delivery_batch_size
from worker.transport import parse_retry_after

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [("2", 2.0), (" 120 ", 120.0), ("0", 0.0)])
def test_retry_after_in_seconds(header, seconds):
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_as_an_http_date():
    later = NOW + timedelta(seconds=90)
    assert parse_retry_after(format_datetime(later, usegmt=True), NOW) == 90.0
    assert parse_retry_after("Fri, 27 Nov 2026 12:01:30 GMT", NOW) == 90.0


def test_retry_after_in_the_past_means_now():
    assert parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "2 s", "Friday", "0x10"])
def test_unreadable_retry_after_is_ignored(header):
    assert parse_retry_after(header, NOW) is None


def test_a_retry_after_defers_429_and_503_only_and_is_capped_at_an_hour():
    policy = RetryPolicy(schedule=(1,), jitter=0)
    assert policy.deferral(429, 30.0, 1) == 30.0
    assert policy.deferral(503, 30.0, 1) == 30.0
    assert policy.deferral(503, 86_400.0, 1) == 3600.0
    assert policy.deferral(500, 30.0, 1) is None
    assert policy.deferral(429, None, 1) is None


def test_a_retry_after_never_shortens_the_backoff():
    policy = RetryPolicy(schedule=(5, 30), jitter=0)
    assert policy.deferral(429, 0.0, 1) == 5.0
    assert policy.deferral(429, 2.0, 2) == 30.0


@pytest.mark.parametrize(
    ("batch", "in_flight", "lease", "timeout", "claimed"),
    [
        (200, 64, 60, 10, 200),  # the defaults: 64 x 6 waves = 384 >= 200
        (200, 8, 60, 10, 48),  # 8 x 6 waves
        (50, 2, 6, 3, 4),  # 2 x 2 waves
        (50, 2, 5, 3, 2),  # one whole wave fits, not two
        (1, 64, 60, 10, 1),
    ],
)
def test_a_claim_is_never_bigger_than_its_lease_and_in_flight_limit_can_send(
    batch, in_flight, lease, timeout, claimed
):
    assert delivery_batch_size(batch, in_flight, lease, timeout) == claimed
