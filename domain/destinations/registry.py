"""The destinations registry's use cases: list, create, change, delete, rotate, enable, disable.

CRM_TARGET_<NAME>_* destinations are shown beside the registry's (`source: "env"`) and are
read-only here: they change in the environment. A secret is returned once, by the call that
makes it (create, rotate-secret); it is stored sealed (infra/secretbox.py) and never shown again.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, Meta, UnsetType
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations import kinds
from domain.destinations.directory import Sealed, aware, open_sealed, secret_box
from domain.destinations.state import TargetState, states
from domain.destinations.state import enable as enable_state
from domain.enums import NotificationPriority, NotificationStatus, NotificationType, TargetKind
from domain.errors import (
    DomainError,
    DuplicateTarget,
    NotFound,
    ReadOnlyTarget,
    SecretStorageUnavailable,
    TargetInUse,
)
from domain.models import NOTIFICATIONS, TARGETS, utcnow
from domain.outbox.queries import is_unread
from infra.egress import EgressRefused, check_url
from infra.secretbox import SecretBox, SecretKeyMissing, SecretUnreadable
from infra.settings import Settings, Target

T = TARGETS
N = NOTIFICATIONS
NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,49}$"
URL_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*://[^\s/]+\S*$"  # the kind names its schemes
Name = Annotated[str, Meta(pattern=NAME_PATTERN, description="upper-case: BZION_HUB, SALESFORCE")]
Url = Annotated[str, Meta(pattern=URL_PATTERN, max_length=2000)]
Rate = Annotated[float, Meta(gt=0, le=100_000)]
InFlight = Annotated[int, Meta(ge=1, le=10_000)]
Reason = Annotated[str, Meta(min_length=1, max_length=500)]


class CreateTarget(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Name
    url: Url
    kind: TargetKind = TargetKind.WEBHOOK
    events: list[NotificationType] | None = None  # None: every type
    min_priority: NotificationPriority | None = None  # only notifications at or above it
    rate_limit_per_second: Rate | None = None
    max_in_flight: InFlight | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)  # the kind's settings
    credentials: dict[str, str] = msgspec.field(default_factory=dict)  # sealed, never shown


class UpdateTarget(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A PATCH: absent fields stay as they are; `null` clears events, minPriority and limits."""

    url: Url | UnsetType = UNSET
    events: list[NotificationType] | UnsetType | None = UNSET
    min_priority: NotificationPriority | UnsetType | None = UNSET
    rate_limit_per_second: Rate | UnsetType | None = UNSET
    max_in_flight: InFlight | UnsetType | None = UNSET
    options: dict[str, Any] | UnsetType = UNSET  # replaces the options as a whole
    credentials: dict[str, str] | UnsetType = UNSET  # replaces the credentials as a whole


class Disable(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class TargetView(msgspec.Struct, rename="camel"):
    """A destination as the API shows it: never its secrets."""

    name: str
    source: str  # "env" (CRM_TARGET_<NAME>_*, read-only here) or "api" (the registry)
    kind: str
    url: str | None  # a password or token in it is masked: amqp://***@host:5672/vhost
    events: list[str] | None
    min_priority: str | None
    rate_limit_per_second: float | None
    max_in_flight: int | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None  # a rotation's overlap, while it lasts
    created_at: datetime | None
    updated_at: datetime | None
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class TargetCreated(TargetView, kw_only=True):
    secret: str  # shown this once


class RotatedSecret(msgspec.Struct, rename="camel"):
    secret: str  # shown this once
    previous_secret_expires_at: datetime


class Deleted(msgspec.Struct, rename="camel"):
    name: str
    dead_lettered: int


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _box(settings: Settings) -> SecretBox:
    try:
        return secret_box(settings)
    except SecretKeyMissing as exc:
        raise SecretStorageUnavailable(str(exc)) from exc


def env_view(t: Target) -> TargetView:
    return TargetView(
        name=t.name,
        source="env",
        kind=t.kind,
        url=t.url,
        events=None if t.events is None else sorted(e.value for e in t.events),
        min_priority=None if t.min_priority is None else t.min_priority.value,
        rate_limit_per_second=t.rate_limit_per_second,
        max_in_flight=t.max_in_flight,
        enabled=t.enabled,
        disabled_reason=None,
        disabled_at=None,
        previous_secret_expires_at=None,
        created_at=None,
        updated_at=None,
        options=dict(t.options),
    )


def row_view(row: Any, now: datetime | None = None) -> TargetView:
    expires = aware(row.secret_previous_expires_at)
    if expires is not None and (row.secret_previous is None or expires <= (now or utcnow())):
        expires = None
    return TargetView(
        name=row.name,
        source="api",
        kind=str(row.kind),
        url=row.url,
        events=None if row.events is None else sorted(row.events),
        min_priority=None if row.min_priority is None else str(row.min_priority),
        rate_limit_per_second=row.rate_limit_per_second,
        max_in_flight=row.max_in_flight,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        disabled_at=aware(row.disabled_at),
        previous_secret_expires_at=expires,
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        options=dict(row.options or {}),
    )


def _with_state(view: TargetView, state: TargetState | None) -> TargetView:
    """A destination the guardrails disabled (410 Gone, failing for days) shows as disabled."""
    if state is None or not state.disabled or not view.enabled:
        return view
    return msgspec.structs.replace(
        view,
        enabled=False,
        disabled_reason=state.disabled_reason,
        disabled_at=aware(state.disabled_at),
    )


async def list_targets(conn: AsyncConnection, settings: Settings) -> list[TargetView]:
    """Env destinations, then the registry's, each by name."""
    env = [env_view(t) for t in settings.targets]
    names = {t.name for t in settings.targets}
    rows = await conn.execute(select(T).order_by(T.c.name))
    found = await states(conn)
    views = env + [row_view(r) for r in rows if r.name not in names]
    return [_with_state(v, found.get(v.name)) for v in views]


async def get_target(conn: AsyncConnection, settings: Settings, name: str) -> TargetView:
    env = settings.target(name)
    view = env_view(env) if env is not None else row_view(await _row(conn, name))
    return _with_state(view, (await states(conn)).get(name))


async def check_egress(settings: Settings, url: str | None, kind: str = TargetKind.WEBHOOK) -> None:
    """400 naming `url` for an address the worker would refuse (CRM_EGRESS_ALLOW aside); a
    broker's host (amqp://, nats://) by the same rule as a webhook's."""
    if url is None:
        return
    checked = url if urlsplit(url).scheme in ("http", "https") else kinds.egress_url(url)
    try:
        await asyncio.to_thread(check_url, checked, settings.egress_allow)
    except EgressRefused as exc:
        raise DomainError(str(exc).replace(checked, kinds.mask_url(kind, url)), "url") from exc


def check_kind(kind: str, url: str | None, options: Any, credentials: Any) -> None:
    """The kind's rules (domain/destinations/kinds.py): a 400 naming the field at fault."""
    try:
        kinds.validate(kind, url, options, credentials)
    except kinds.OptionError as exc:
        raise DomainError(exc.message, exc.field) from exc


def _sealed_values(
    box: SecretBox, name: str, kind: str, url: str, credentials: dict[str, str]
) -> dict[str, Any]:
    """The `url` (masked when it carries a password) and `credentials` columns."""
    secret_url = kinds.spec(kind).secret_url
    sealed = Sealed(dict(credentials), url if secret_url else None)
    return {"url": kinds.mask_url(kind, url), "credentials": sealed.seal(box, name)}


async def _row(conn: AsyncConnection, name: str, lock: bool = False) -> Any:
    stmt = select(T).where(T.c.name == name)
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound(f"no destination named {name}", "name")
    return row


async def writable_row(
    conn: AsyncConnection, settings: Settings, name: str, lock: bool = True
) -> Any:
    """The registry row of `name`, locked; ReadOnlyTarget for an env destination."""
    if settings.target(name) is not None:
        raise ReadOnlyTarget(
            f"{name} is declared by CRM_TARGET_{name}_* variables: change it there", "name"
        )
    return await _row(conn, name, lock)


def default_min_priority(
    kind: str, asked: NotificationPriority | None
) -> NotificationPriority | None:
    """Slack is for people: it hears HIGH notifications unless asked otherwise (issue 12)."""
    if asked is None and kind == TargetKind.SLACK:
        return NotificationPriority.HIGH
    return asked


async def create_target(
    conn: AsyncConnection, settings: Settings, cmd: CreateTarget
) -> TargetCreated:
    if settings.target(cmd.name) is not None:
        raise DuplicateTarget(f"{cmd.name} is declared by CRM_TARGET_{cmd.name}_* variables")
    check_kind(cmd.kind, cmd.url, cmd.options, cmd.credentials)
    await check_egress(settings, cmd.url, cmd.kind)
    box = _box(settings)
    secret, now = new_secret(), utcnow()
    values = {
        "id": uuid.uuid4(),
        "name": cmd.name,
        "kind": cmd.kind,
        **_sealed_values(box, cmd.name, cmd.kind, cmd.url, cmd.credentials),
        "options": cmd.options,
        "secret_current": box.seal(secret, cmd.name),
        "events": None if cmd.events is None else sorted({e.value for e in cmd.events}),
        "min_priority": default_min_priority(cmd.kind, cmd.min_priority),
        "rate_limit_per_second": cmd.rate_limit_per_second,
        "max_in_flight": cmd.max_in_flight,
        "enabled": True,
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with conn.begin_nested():  # a duplicate leaves the request's transaction usable
            await conn.execute(insert(T).values(values))
    except IntegrityError as exc:
        raise DuplicateTarget(f"a destination named {cmd.name} exists") from exc
    row = await _row(conn, cmd.name)
    return TargetCreated(**msgspec.structs.asdict(row_view(row)), secret=secret)


async def update_target(
    conn: AsyncConnection, settings: Settings, name: str, cmd: UpdateTarget
) -> TargetView:
    row = await writable_row(conn, settings, name)
    changes: dict[str, Any] = {
        f.name: getattr(cmd, f.name)
        for f in msgspec.structs.fields(cmd)
        if getattr(cmd, f.name) is not UNSET
    }
    if {"url", "options", "credentials"} & changes.keys():
        kind = str(row.kind)
        box = _box(settings)
        try:
            current = open_sealed(box, row)
        except SecretUnreadable as exc:
            raise SecretStorageUnavailable(str(exc)) from exc
        url = changes.get("url") or current.url or row.url
        credentials = changes.pop("credentials", current.credentials)
        check_kind(kind, url, changes.get("options", row.options or {}), credentials)
        if "url" in changes:
            await check_egress(settings, url, kind)
        changes.update(_sealed_values(box, name, kind, url, credentials))
    if isinstance(changes.get("events"), list):
        changes["events"] = sorted({e.value for e in changes["events"]})
    if changes:
        await conn.execute(update(T).where(T.c.name == name).values(**changes, updated_at=utcnow()))
    return row_view(await _row(conn, name))


async def set_enabled(
    conn: AsyncConnection, settings: Settings, name: str, enabled: bool, reason: str | None = None
) -> TargetView:
    """Enable (delivery resumes) or disable with a reason (its rows wait, still routed).

    Enabling also clears a disable by the guardrails, for env destinations too (the only
    change they take here)."""
    env = settings.target(name)
    if enabled:
        await enable_state(conn, name)
        if env is not None:
            return env_view(env)
    await writable_row(conn, settings, name)
    now = utcnow()
    await conn.execute(
        update(T)
        .where(T.c.name == name)
        .values(
            enabled=enabled,
            disabled_reason=None if enabled else reason,
            disabled_at=None if enabled else now,
            updated_at=now,
        )
    )
    return row_view(await _row(conn, name))


async def rotate_secret(conn: AsyncConnection, settings: Settings, name: str) -> RotatedSecret:
    """A new current secret; the old one signs beside it for CRM_SECRET_OVERLAP_HOURS, then is
    ignored by the signer (a rotation during an overlap drops the older previous one)."""
    row = await writable_row(conn, settings, name)
    box = _box(settings)
    box.open(row.secret_current, name)  # the old one must still be readable to keep signing
    secret, now = new_secret(), utcnow()
    expires = now + settings.secret_overlap
    await conn.execute(
        update(T)
        .where(T.c.name == name)
        .values(
            secret_current=box.seal(secret, name),
            secret_previous=row.secret_current,
            secret_previous_expires_at=expires,
            updated_at=now,
        )
    )
    return RotatedSecret(secret, expires)


async def drop_expired_secrets(conn: AsyncConnection, now: datetime | None = None) -> int:
    """Forget rotated-out secrets past their overlap (the signer already ignores them)."""
    done = await conn.execute(
        update(T)
        .where(T.c.secret_previous_expires_at <= (now or utcnow()))
        .values(secret_previous=None, secret_previous_expires_at=None)
    )
    return done.rowcount or 0


async def delete_target(
    conn: AsyncConnection, settings: Settings, name: str, force: bool = False
) -> Deleted:
    """Remove a registry destination. While unread notifications are routed to it, refuse,
    unless `force`: then they are dead-lettered (FAILED, kept for replay or inspection)."""
    await writable_row(conn, settings, name)
    unread = (
        await conn.execute(select(func.count()).where(N.c.target_system == name, is_unread()))
    ).scalar_one()
    dead = 0
    if unread and not force:
        raise TargetInUse(
            f"{unread} unread notification(s) are routed to {name}; "
            "deliver or replay them elsewhere, or delete with ?force=true to dead-letter them",
            "name",
        )
    if unread:
        now = utcnow()
        done = await conn.execute(
            update(N)
            .where(N.c.target_system == name, is_unread(), N.c.status != NotificationStatus.FAILED)
            .values(
                status=NotificationStatus.FAILED,
                failed_at=now,
                last_error=f"destination {name} deleted",
                claimed_until=None,
                claimed_by=None,
            )
        )
        dead = done.rowcount or 0
    await conn.execute(delete(T).where(T.c.name == name))
    return Deleted(name, dead)
