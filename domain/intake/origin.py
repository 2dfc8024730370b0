"""Use cases: each function is one transaction that writes domain rows and their outbox rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a public request came from; copied into the notification data."""

    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
