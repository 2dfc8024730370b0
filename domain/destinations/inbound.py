"""Messages a destination signs and sends us (two-way sync): who sent it, is it genuine, is it new.

A destination signs with its own secret, exactly as we sign what we send it (Standard
Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` over the raw body), and the
`standardwebhooks` library verifies it with its 5-minute tolerance on the timestamp. During a
rotation's overlap either of a registry destination's secrets verifies.

The sender's secrets are read from the database for each message, not from the directory's
snapshot: a destination created a moment ago can sign at once, and a rotated-out secret stops
verifying the instant its overlap ends (one indexed row read; inbound traffic is light).

A verified `webhook-id` is recorded per destination in the request's transaction: a replay of
it (a retry of one the sender thinks we missed, or a captured message sent again) is answered
as a duplicate and changes nothing. A change that is refused rolls back with its id, so the
sender may fix and retry it under the same id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from domain.destinations.directory import active_secrets, secret_box
from domain.errors import NotFound, SignatureRejected
from domain.models import INBOUND_EVENTS, TARGETS, utcnow
from infra.secretbox import SecretKeyMissing, SecretUnreadable
from infra.settings import Secret, Settings

# How long a received webhook-id is kept. It must outlive the window in which its timestamp
# still verifies (5 minutes either side of now); a day leaves room for clock skew and audits.
INBOUND_EVENT_RETENTION = timedelta(days=1)
MAX_WEBHOOK_ID = 255


async def sender_secrets(
    conn: AsyncConnection, settings: Settings, name: str
) -> tuple[Secret, ...]:
    """The secrets `name` signs with (env destination first, as everywhere; then the registry
    row's current and, during a rotation overlap, previous one). NotFound for no such name."""
    env = settings.target(name)
    if env is not None:
        return env.secrets
    row = (await conn.execute(select(TARGETS).where(TARGETS.c.name == name))).first()
    if row is None:
        raise NotFound(f"no destination named {name}", "targetName")
    try:
        secrets, _expires = active_secrets(secret_box(settings), row, utcnow())
    except (SecretKeyMissing, SecretUnreadable) as exc:  # cannot verify: never accept unsigned
        raise SignatureRejected(f"{name}'s secret cannot be read to verify the signature") from exc
    return secrets


def verify_signature(secrets: tuple[Secret, ...], body: bytes, headers: Mapping[str, str]) -> str:
    """The message's `webhook-id` once one of `secrets` verifies the raw body and headers;
    SignatureRejected (unsigned, wrong secret, stale or future timestamp) otherwise."""
    wanted = {
        k: headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    if not all(wanted.values()):
        raise SignatureRejected("webhook-id, webhook-timestamp and webhook-signature are required")
    reason = "no secret to verify with"
    for secret in secrets:
        try:
            Webhook(secret.get()).verify(body, wanted, json_parse=False)
            return wanted["webhook-id"]
        except WebhookVerificationError as exc:
            reason = str(exc)
        except ValueError:  # a malformed signature header, or a body that is not UTF-8
            reason = "malformed signature or body"
    raise SignatureRejected(f"the signature does not verify: {reason}")


async def first_receipt(conn: AsyncConnection, target: str, webhook_id: str, now: datetime) -> bool:
    """Record `webhook_id` from `target`; False when it was received before (a replay).

    INSERT ... ON CONFLICT DO NOTHING: a concurrent copy of the same message waits for the first
    one's transaction and then finds the id taken, so exactly one of them applies.
    """
    if len(webhook_id) > MAX_WEBHOOK_ID:
        raise SignatureRejected(f"webhook-id is longer than {MAX_WEBHOOK_ID} characters")
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(INBOUND_EVENTS)
        .values(target=target, webhook_id=webhook_id, received_at=now)
        .on_conflict_do_nothing()
        .returning(INBOUND_EVENTS.c.webhook_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def forget_old_receipts(conn: AsyncConnection, now: datetime) -> int:
    """Retention: drop webhook-ids older than INBOUND_EVENT_RETENTION (their timestamps no
    longer verify, so a replay of them is refused as stale anyway)."""
    cutoff = now - INBOUND_EVENT_RETENTION
    done = await conn.execute(delete(INBOUND_EVENTS).where(INBOUND_EVENTS.c.received_at < cutoff))
    return int(done.rowcount)
