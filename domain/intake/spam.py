"""Bots fill the honeypot field; they get a plausible answer and nothing is written."""

from __future__ import annotations

import uuid
from typing import Any

from domain.enums import SubscriberStatus
from domain.intake.commands import SubmitForm, SubmitRfq, Subscribe
from domain.intake.forms import FormSubmitted
from domain.intake.newsletter import Subscription
from domain.intake.rfq import QuoteSubmitted, quote_reference
from domain.rules import rule_for_form


def is_bot(cmd: Any) -> bool:
    return bool(getattr(cmd, "website", None))


def decoy_form(cmd: SubmitForm) -> FormSubmitted:
    note = uuid.uuid4()
    return FormSubmitted(
        uuid.uuid4(), uuid.uuid4(), note, [note], rule_for_form(cmd.form_type).score
    )


def decoy_subscription(cmd: Subscribe) -> Subscription:
    return Subscription(
        uuid.uuid4(), cmd.email, SubscriberStatus.SUBSCRIBED, created=True, lead_id=uuid.uuid4()
    )


def decoy_quote(cmd: SubmitRfq) -> QuoteSubmitted:
    return QuoteSubmitted(uuid.uuid4(), quote_reference(), uuid.uuid4(), [uuid.uuid4()])
