"""The one view of every destination: env targets (CRM_TARGET_<NAME>_*) and registry rows.

Routing (the API's write paths) and delivery (the dispatcher) both read it, so a destination
created, changed, disabled or re-keyed through the registry is followed within seconds, with
no restart. Each process keeps one snapshot and reloads it at most every `ttl` seconds (and
when the soonest rotated-out secret expires): no request pays a query for it.

Disabled destinations stay routed (their rows wait); only the dispatcher skips them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.enums import NotificationPriority, NotificationType
from domain.models import TARGETS, utcnow
from domain.rules import DEFAULT_TARGET, Route
from infra.secretbox import SecretBox, SecretKeyMissing, SecretUnreadable
from infra.settings import Secret, Settings, Target

log = logging.getLogger("crm.destinations")
DEFAULT_TTL = 2.0  # seconds a snapshot is trusted: changes are followed within ~2 s (< 5 s)
RETRY_AFTER_ERROR = 1.0  # the database was unreachable: keep the last snapshot, retry soon


@dataclass(frozen=True)
class Snapshot:
    """Every destination at one moment: env ones first, then registry ones by name."""

    targets: tuple[Target, ...]
    routes: tuple[Route, ...] = field(init=False)
    push_targets: tuple[Target, ...] = field(init=False)

    def __post_init__(self) -> None:
        # Computed once per snapshot: the form fast path reads them on every request.
        routes = tuple(t.route for t in self.targets) or (Route(DEFAULT_TARGET),)
        pushing = tuple(t for t in self.targets if t.enabled and t.url and t.secrets)
        object.__setattr__(self, "routes", routes)
        object.__setattr__(self, "push_targets", pushing)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


def secret_box(settings: Settings) -> SecretBox:
    """The box target secrets are sealed in; SecretKeyMissing without a usable CRM_SECRET_KEY."""
    if settings.encryption_key is None:
        raise SecretKeyMissing(
            "CRM_SECRET_KEY (32 or more characters) must be set to store a destination's secret"
        )
    return SecretBox(settings.encryption_key.get())


def active_secrets(
    box: SecretBox, row: Any, now: datetime
) -> tuple[tuple[Secret, ...], datetime | None]:
    """The row's signing secrets (current first, then the previous one until it expires) and
    when that previous one expires, if it still signs. An expired one is simply not used."""
    found = [Secret(box.open(row.secret_current, row.name))]
    expires = aware(row.secret_previous_expires_at)
    if row.secret_previous and expires is not None and expires > now:
        found.append(Secret(box.open(row.secret_previous, row.name)))
        return tuple(found), expires
    return tuple(found), None


def aware(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; every stored one is UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


async def load_snapshot(
    conn: AsyncConnection, settings: Settings
) -> tuple[Snapshot, datetime | None]:
    """Env targets plus registry rows (secrets opened); and the soonest secret expiry."""
    env_names = {t.name for t in settings.targets}
    rows = (await conn.execute(select(TARGETS).order_by(TARGETS.c.name))).all()
    now = utcnow()
    box: SecretBox | None = None
    soonest: datetime | None = None
    found = list(settings.targets)
    for row in rows:
        if row.name in env_names:
            log.warning("destination %s is declared in env and in the registry: env wins", row.name)
            continue
        secrets: tuple[Secret, ...] = ()
        sealed = Sealed()
        try:
            box = box or secret_box(settings)
            secrets, expires = active_secrets(box, row, now)
            if expires is not None and (soonest is None or expires < soonest):
                soonest = expires
            sealed = open_sealed(box, row)
        except (SecretKeyMissing, SecretUnreadable) as exc:
            # Routed still (rows wait), never delivered unsigned.
            log.error("destination %s cannot be signed for: %s", row.name, exc)
            secrets = ()
        found.append(registry_target(row, secrets, sealed))
    return Snapshot(tuple(found)), soonest


@dataclass(frozen=True)
class Sealed:
    """A row's sealed part, opened: the kind's credentials, and its URL when that carries a
    password (amqp://user:pass@...; the `url` column then holds the masked form)."""

    credentials: dict[str, str] = field(default_factory=dict)
    url: str | None = None

    def seal(self, box: SecretBox, name: str) -> str | None:
        if not self.credentials and self.url is None:
            return None
        return box.seal(json.dumps({"credentials": self.credentials, "url": self.url}), name)


def open_sealed(box: SecretBox, row: Any) -> Sealed:
    """SecretUnreadable when it does not decrypt (another CRM_SECRET_KEY, or tampered)."""
    if not row.credentials:
        return Sealed()
    opened = json.loads(box.open(row.credentials, row.name))
    return Sealed(dict(opened.get("credentials") or {}), opened.get("url"))


def registry_target(row: Any, secrets: tuple[Secret, ...], sealed: Sealed | None = None) -> Target:
    """A registry row as the Target routing and delivery read (source "api")."""
    sealed = sealed or Sealed()
    return Target(
        name=row.name,
        url=sealed.url or row.url,
        secrets=secrets,
        events=None if row.events is None else frozenset(NotificationType(e) for e in row.events),
        kind=str(row.kind),
        min_priority=None if row.min_priority is None else NotificationPriority(row.min_priority),
        rate_limit_per_second=row.rate_limit_per_second,
        max_in_flight=row.max_in_flight,
        enabled=bool(row.enabled),
        source="api",
        options=dict(row.options or {}),
        credentials={k: Secret(v) for k, v in sealed.credentials.items()},
    )


class Directory:
    """One per process: the last snapshot, reloaded when older than `ttl` seconds."""

    def __init__(
        self,
        settings: Settings,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.ttl = ttl
        self._clock = clock
        self._snapshot = Snapshot(settings.targets)  # env only until the first load
        self._valid_until = float("-inf")

    @property
    def snapshot(self) -> Snapshot:
        """The last snapshot loaded (never waits; env targets only before the first load)."""
        return self._snapshot

    @property
    def stale(self) -> bool:
        return self._clock() >= self._valid_until

    def invalidate(self) -> None:
        """Reload at the next `current` (this process changed the registry)."""
        self._valid_until = float("-inf")

    async def refresh(self, conn: AsyncConnection) -> Snapshot:
        snapshot, soonest = await load_snapshot(conn, self.settings)
        until = self._clock() + self.ttl
        if soonest is not None:  # a rotated-out secret stops signing on time, not a TTL late
            until = min(until, self._clock() + max(0.0, (soonest - utcnow()).total_seconds()))
        self._snapshot, self._valid_until = snapshot, until
        return snapshot

    async def current(self, engine: AsyncEngine) -> Snapshot:
        """The snapshot, reloaded first when stale; the last one if the database is away."""
        if not self.stale:
            return self._snapshot
        try:
            async with engine.connect() as conn:
                return await self.refresh(conn)
        except Exception as exc:  # database down, or not migrated yet: keep delivering
            log.warning("destinations not reloaded (%s); keeping the last ones", type(exc).__name__)
            self._valid_until = self._clock() + RETRY_AFTER_ERROR
            return self._snapshot
