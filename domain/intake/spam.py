"""Bots fill the honeypot field; they get a plausible answer and no lead or notification.

A form a bot filled is still recorded, as a FormSubmission with status SPAM (no lead, no
outbox row), so operators see the bot volume; it goes through the same one-statement write
as a real form (group commit on PostgreSQL), so the honeypot path stays as cheap as the
real one. Newsletter and RFQ honeypots write nothing (they have no status to mark).
"""

from __future__ import annotations

import uuid
from typing import Any

from domain.enums import FormSubmissionStatus, SubscriberStatus
from domain.intake.commands import SubmitForm, SubmitRfq, Subscribe
from domain.intake.forms import FormSubmitted
from domain.intake.newsletter import Subscription
from domain.intake.origin import Origin
from domain.intake.rfq import QuoteSubmitted, quote_reference
from domain.models import FORM_SUBMISSIONS, utcnow
from domain.outbox.rows import Writes, insert_all
from domain.rules import rule_for_form
from infra.db import Database


def is_bot(cmd: Any) -> bool:
    return bool(getattr(cmd, "website", None))


def decoy_form(cmd: SubmitForm, form_id: uuid.UUID | None = None) -> FormSubmitted:
    note = uuid.uuid4()
    return FormSubmitted(
        form_id or uuid.uuid4(), uuid.uuid4(), note, [note], rule_for_form(cmd.form_type).score
    )


def spam_form_writes(cmd: SubmitForm, origin: Origin) -> tuple[uuid.UUID, Writes]:
    """The one row of a bot's form: what it posted, with status SPAM."""
    form_id = uuid.uuid4()
    row = {
        "id": form_id,
        "form_type": cmd.form_type,
        "data": {
            **(cmd.metadata or {}),
            "email": cmd.email,
            "name": cmd.name,
            "companyName": cmd.company_name,
            "phone": cmd.phone,
            "message": cmd.message,
            "website": cmd.website,
        },
        "ip_address": origin.ip_address,
        "user_agent": origin.user_agent,
        "status": FormSubmissionStatus.SPAM,
        "created_at": utcnow(),
    }
    return form_id, [(FORM_SUBMISSIONS, [row])]


async def record_spam_form(db: Database, cmd: SubmitForm, origin: Origin) -> FormSubmitted:
    """Record a honeypot form as SPAM and answer the bot as if it had succeeded."""
    form_id, writes = spam_form_writes(cmd, origin)
    if db.is_postgres:
        await db.write_grouped(writes)
    else:
        async with db.transaction() as conn:
            await insert_all(conn, writes)
    return decoy_form(cmd, form_id)


def decoy_subscription(cmd: Subscribe) -> Subscription:
    return Subscription(
        uuid.uuid4(), cmd.email, SubscriberStatus.SUBSCRIBED, created=True, lead_id=uuid.uuid4()
    )


def decoy_quote(cmd: SubmitRfq) -> QuoteSubmitted:
    return QuoteSubmitted(uuid.uuid4(), quote_reference(), uuid.uuid4(), [uuid.uuid4()])
