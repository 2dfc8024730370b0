"""The webhook body the dispatcher signs is `Claimed.payload()` as JSON, byte for byte."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from domain.outbox.delivery import Claimed


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds
        datetime(2026, 1, 2, 3, 4, 5, 60, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 1, 2, 3, 4, 5, 123456),  # naive (SQLite)
    ],
)
def test_body_is_the_payload_encoded(created_at: datetime) -> None:
    data = {"email": "a@b.io", "score": 80, "tags": ["x", None, 1.5], "ünï": {"k": True}}
    n = Claimed(uuid.uuid4(), "NEW_LEAD", "BZION_HUB", "HIGH", data, created_at, 2, "req-1")
    assert n.body() == msgspec.json.encode(n.payload())
    assert msgspec.json.decode(n.body())["createdAt"].endswith(
        "Z" if created_at.tzinfo is UTC else created_at.isoformat()[-6:]
    )
