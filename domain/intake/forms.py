"""POST /api/forms/submit: FormSubmission + scored Lead + NEW_FORM_SUBMISSION, one statement.

This is the hottest write path: on PostgreSQL, without an Idempotency-Key, it is one prepared
statement in autocommit through the driver's pool (`submit_form_alone`), shared with the
submissions that arrive while earlier ones are being written (group commit,
infra/group_commit.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.definitions import FieldDefinition, cached_fields, cached_fields_of
from domain.custom_fields.values import check_values
from domain.enums import CustomFieldEntity, FormSubmissionStatus, LeadStatus, NotificationType
from domain.intake.commands import SubmitForm
from domain.intake.origin import Origin
from domain.models import FORM_SUBMISSIONS, LEADS, NOTIFICATIONS, utcnow
from domain.outbox.rows import Writes, insert_all, notification_rows
from domain.rules import Route, attribution, rule_for_form
from infra.db import Database

WEB_FORM_SOURCE = "web_form"


class FormSubmitted(msgspec.Struct, rename="camel"):
    form_submission_id: uuid.UUID
    lead_id: uuid.UUID
    notification_id: uuid.UUID | None
    notification_ids: list[uuid.UUID]
    lead_score: int
    success: bool = True


def form_values(fields: list[FieldDefinition], values: dict[str, Any]) -> dict[str, Any]:
    """A form's lead custom fields, checked like any write; a public form is not refused for
    leaving out a required field (it cannot know about it), only for a wrong value."""
    checked = check_values(fields, values, creating=False, enforce_required=False)
    return {k: v for k, v in checked.items() if v is not None}


def form_writes(
    cmd: SubmitForm, origin: Origin, routes: Iterable[Route]
) -> tuple[FormSubmitted, Writes]:
    """The rows of one submission (form, lead, one outbox row per target) and the answer."""
    rule = rule_for_form(cmd.form_type)
    now = utcnow()
    form_id, lead_id = uuid.uuid4(), uuid.uuid4()
    metadata = cmd.metadata or {}
    contact: dict[str, Any] = {
        "email": cmd.email,
        "name": cmd.name,
        "companyName": cmd.company_name,
        "phone": cmd.phone,
        "message": cmd.message,
    }
    form_row = {
        "id": form_id,
        "form_type": cmd.form_type,
        "data": {**metadata, **contact},
        "ip_address": origin.ip_address,
        "user_agent": origin.user_agent,
        "status": FormSubmissionStatus.NEW,
        "created_at": now,
    }
    lead_row = {
        "id": lead_id,
        "email": cmd.email,
        "name": cmd.name,
        "company_name": cmd.company_name,
        "phone": cmd.phone,
        "type": rule.lead_type,
        "source": WEB_FORM_SOURCE,
        "status": LeadStatus.NEW,
        "lead_score": rule.score,
        "custom_fields": cmd.custom_fields or None,
        "metadata": {
            "formSubmissionId": str(form_id),
            "formType": cmd.form_type,
            **attribution(metadata),
        },
        "created_at": now,
        "updated_at": now,
    }
    data: dict[str, Any] = {
        "formSubmissionId": str(form_id),
        "leadId": str(lead_id),
        "formType": cmd.form_type,
        "email": cmd.email,
        "name": cmd.name,
        "companyName": cmd.company_name,
        "phone": cmd.phone,
        "leadScore": rule.score,
        "submittedAt": now.isoformat(),
        "ipAddress": origin.ip_address,
        "userAgent": origin.user_agent,
    }
    if cmd.custom_fields:  # the seed's payload, plus the lead's custom fields when posted
        data["customFields"] = cmd.custom_fields
    notes = notification_rows(
        NotificationType.NEW_FORM_SUBMISSION, data, routes, now, rule.score, origin.request_id
    )
    writes = [(FORM_SUBMISSIONS, [form_row]), (LEADS, [lead_row]), (NOTIFICATIONS, notes)]
    ids = [n["id"] for n in notes]
    return FormSubmitted(form_id, lead_id, ids[0] if ids else None, ids, rule.score), writes


async def submit_form(
    conn: AsyncConnection, cmd: SubmitForm, origin: Origin, routes: Iterable[Route]
) -> FormSubmitted:
    """Inside the caller's transaction (which also records an Idempotency-Key)."""
    if cmd.custom_fields:
        fields = await cached_fields(conn, CustomFieldEntity.LEAD)
        cmd.custom_fields = form_values(fields, cmd.custom_fields)
    result, writes = form_writes(cmd, origin, routes)
    await insert_all(conn, writes)
    return result


async def submit_form_alone(
    db: Database, cmd: SubmitForm, origin: Origin, routes: Iterable[Route]
) -> FormSubmitted:
    """Not inside a caller's transaction: on PostgreSQL one statement in autocommit, grouped with
    the submissions that arrive meanwhile (group commit); elsewhere its own transaction."""
    if cmd.custom_fields:  # definitions from a short per-process cache: no read per form
        fields = await cached_fields_of(db, CustomFieldEntity.LEAD)
        cmd.custom_fields = form_values(fields, cmd.custom_fields)
    result, writes = form_writes(cmd, origin, routes)
    if db.is_postgres:
        await db.write_grouped(writes)  # one statement, shared with concurrent submissions
    else:
        async with db.transaction() as conn:
            await insert_all(conn, writes)
    return result
