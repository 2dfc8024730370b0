"""Status changes back in (two-way sync): a destination tells us a lead moved or was assigned.

The message is verified first (domain/destinations/inbound.py: signature over the raw body,
replays ignored), then decoded, then applied through `update_lead`: the same transition rules,
audit trail and notifications as a change made in the dashboard, by actor `target:<NAME>`.
What the change emits (NEW_LEAD on assignment, LEAD_CONVERTED, ...) goes to every other
destination but not back to the sender, which already knows: no echo, no ping-pong loop.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping

import msgspec
from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.destinations.inbound import first_receipt, sender_secrets, verify_signature
from domain.enums import LeadStatus
from domain.errors import DomainError, NotFound
from domain.intake.commands import Email, normalize_email
from domain.leads.lifecycle import Assignee, UpdateLead, update_lead
from domain.leads.queries import LeadView
from domain.models import LEADS, utcnow
from domain.rules import OPEN_LEAD_STATUSES, Route
from infra.settings import Settings


class _LeadRef(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Which lead: our `leadId`, or its `email` (the newest open lead with it, else the newest)."""

    lead_id: uuid.UUID | None = None
    email: Email | None = None

    def __post_init__(self) -> None:
        if (self.lead_id is None) == (self.email is None):
            raise ValueError("leadId must be given, or email (one of them)")


class StatusData(_LeadRef, kw_only=True):
    status: LeadStatus


class AssignedData(_LeadRef, kw_only=True):
    assigned_to: Assignee | None  # null unassigns


class StatusChanged(msgspec.Struct, tag_field="type", tag="lead.status_changed"):
    data: StatusData


class Assigned(msgspec.Struct, tag_field="type", tag="lead.assigned"):
    data: AssignedData


InboundChange = StatusChanged | Assigned
_MISSING = re.compile(r"missing required field `([^`]+)`")


class InboundResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """The answer: `duplicate` true for a replayed webhook-id (nothing changed), else the lead."""

    duplicate: bool
    lead: LeadView | None = None


def actor_for(target: str) -> str:
    """Who the audit trail names for a change a destination made."""
    return f"target:{target}"


def decode_change(body: bytes) -> InboundChange:
    """The body as one of the known changes; a 400 naming the field otherwise."""
    try:
        return msgspec.json.decode(body, type=InboundChange)  # type: ignore[arg-type]
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).partition(" - at `$")
        path = at.rstrip("`").lstrip(".")
        if missing := _MISSING.search(message):
            path = f"{path}.{missing[1]}" if path else missing[1]
        raise DomainError(message, path or "body") from exc
    except msgspec.DecodeError as exc:
        raise DomainError(f"not valid JSON: {exc}", "body") from exc


async def find_lead(conn: AsyncConnection, ref: _LeadRef) -> uuid.UUID:
    if ref.lead_id is not None:
        found = await conn.scalar(select(LEADS.c.id).where(LEADS.c.id == ref.lead_id))
        if found is None:
            raise NotFound(f"no lead with id {ref.lead_id}", "data.leadId")
        return found
    email = normalize_email(ref.email or "")
    open_first = case((LEADS.c.status.in_(OPEN_LEAD_STATUSES), 0), else_=1)
    found = await conn.scalar(
        select(LEADS.c.id)
        .where(LEADS.c.email == email)
        .order_by(open_first, LEADS.c.created_at.desc(), LEADS.c.id.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound(f"no lead with email {email}", "data.email")
    return found


async def receive_change(
    conn: AsyncConnection,
    settings: Settings,
    target: str,
    body: bytes,
    headers: Mapping[str, str],
    routes: Iterable[Route],
) -> InboundResult:
    """Verify, de-duplicate, decode and apply one signed change from destination `target`."""
    webhook_id = verify_signature(await sender_secrets(conn, settings, target), body, headers)
    if not await first_receipt(conn, target, webhook_id, utcnow()):
        return InboundResult(duplicate=True)
    change = decode_change(body)
    lead_id = await find_lead(conn, change.data)
    if isinstance(change, StatusChanged):
        cmd = UpdateLead(status=change.data.status)
    else:
        cmd = UpdateLead(assigned_to=change.data.assigned_to)
    elsewhere = [r for r in routes if r.target != target]  # never echoed back to the sender
    lead = await update_lead(conn, lead_id, cmd, actor_for(target), elsewhere)
    return InboundResult(duplicate=False, lead=lead)
