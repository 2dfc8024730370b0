"""A destination's test: one signed PING event sent now, from the calling process."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.directory import active_secrets, secret_box
from domain.destinations.registry import writable_row
from domain.enums import TargetKind
from domain.errors import DomainError, SecretStorageUnavailable
from domain.models import utcnow
from infra.egress import EgressRefused, check_url
from infra.secretbox import SecretKeyMissing
from infra.settings import Secret, Settings
from infra.webhooks import send_signed

PING = "PING"  # an event type of its own: never stored in the outbox, never routed


class PingResult(msgspec.Struct, rename="camel"):
    status: int | None  # the receiver's HTTP status; None when it could not be reached
    duration_ms: float
    error: str | None


async def _url_and_secrets(
    conn: AsyncConnection, settings: Settings, name: str
) -> tuple[str | None, tuple[Secret, ...]]:
    env = settings.target(name)
    if env is not None:
        return env.url, env.secrets
    row = await writable_row(conn, settings, name, lock=False)
    if str(row.kind) != TargetKind.WEBHOOK:
        raise DomainError(f"{name} is a {row.kind} destination: a test PING is a webhook's", "name")
    try:
        secrets, _ = active_secrets(secret_box(settings), row, utcnow())
    except SecretKeyMissing as exc:
        raise SecretStorageUnavailable(str(exc)) from exc
    return row.url, secrets


async def ping_target(conn: AsyncConnection, settings: Settings, name: str) -> PingResult:
    url, secrets = await _url_and_secrets(conn, settings, name)
    if not url or not secrets:
        raise DomainError(f"{name} has no push URL (pull mode only)", "name")
    try:  # the worker's egress rule, so a test never reaches what a delivery may not
        await asyncio.to_thread(check_url, url, settings.egress_allow)
    except EgressRefused as exc:
        return PingResult(None, 0.0, str(exc))
    msg_id = str(uuid.uuid4())
    body = msgspec.json.encode(
        {
            "id": msg_id,
            "type": PING,
            "targetSystem": name,
            "priority": "LOW",
            "data": {},
            "createdAt": utcnow().isoformat().replace("+00:00", "Z"),
        }
    )
    sent = await send_signed(url, secrets, msg_id, body, settings.delivery_timeout)
    return PingResult(sent.status, sent.duration_ms, sent.error)
