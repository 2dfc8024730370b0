"""Sign-in failures counted per account, whatever address they come from.

The per-address rate limit stops one client guessing; a guesser spread over many addresses
is stopped here: after MAX_FAILURES wrong passwords for one email within WINDOW, that email
is locked until the window ends (even for the right password), then counting starts afresh.
Kept in the shared store so every API process sees the same count.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Protocol

from domain.intake.commands import normalize_email

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
_PREFIX = "account-failures:"


class FailureStore(Protocol):
    """What is used of a key-value store with expiry (Litestar's `Store` fits)."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: str | bytes, expires_in: int | None = None) -> None: ...

    async def expires_in(self, key: str) -> int | None: ...

    async def delete(self, key: str) -> None: ...


def _key(email: str) -> str:
    # Hashed: the store is not a list of the emails people tried.
    return _PREFIX + hashlib.sha256(normalize_email(email).encode()).hexdigest()


async def _failures(store: FailureStore, key: str) -> int:
    raw = await store.get(key)
    try:
        return int(raw or 0)
    except ValueError:
        return 0


async def locked_for(store: FailureStore, email: str) -> int | None:
    """Seconds this account stays locked, or None when it may try to sign in."""
    key = _key(email)
    if await _failures(store, key) < MAX_FAILURES:
        return None
    remaining = await store.expires_in(key)
    return max(1, remaining) if remaining else int(WINDOW.total_seconds())


async def record_failure(store: FailureStore, email: str) -> None:
    """Count one wrong password; the window starts at the first failure and is not extended."""
    key = _key(email)
    count = await _failures(store, key) + 1
    remaining = await store.expires_in(key) if count > 1 else None
    await store.set(key, str(count), expires_in=remaining or int(WINDOW.total_seconds()))


async def clear_failures(store: FailureStore, email: str) -> None:
    await store.delete(_key(email))
