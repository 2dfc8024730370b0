"""Lead lifecycle use cases: create by hand, change status/assignee/score, convert to customer.

Each function runs inside the caller's transaction and writes the lead, its audit entries and
its outbox rows together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Annotated, Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.custom_fields.values import checked_values, merged
from domain.customers import Adopt, NewCustomer, ensure_customer
from domain.enums import (
    CustomerSource,
    CustomerStatus,
    CustomFieldEntity,
    FormSubmissionStatus,
    LeadStatus,
    LeadType,
    NotificationType,
)
from domain.errors import IllegalTransition, NotFound
from domain.intake.commands import Command, Email, Metadata, Name, Phone
from domain.leads.audit import audit_rows
from domain.leads.queries import LeadView, lead_view
from domain.models import FORM_SUBMISSIONS, LEAD_AUDIT, LEADS, NOTIFICATIONS, utcnow
from domain.outbox.rows import Rows, insert_all, notification_rows
from domain.rules import (
    LEAD_SCORE_MAX,
    LEAD_SCORE_MIN,
    MANUAL_LEAD_SCORE,
    MANUAL_LEAD_SOURCE,
    OPEN_LEAD_STATUSES,
    Route,
    check_transition,
)

Score = Annotated[int, msgspec.Meta(ge=LEAD_SCORE_MIN, le=LEAD_SCORE_MAX)]
Assignee = Annotated[str, msgspec.Meta(max_length=254)]
CustomFields = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]


class CreateLead(Command):
    email: Email
    name: Name | None = None
    company_name: Name | None = None
    phone: Phone | None = None
    type: LeadType = LeadType.LEAD
    lead_score: Score = MANUAL_LEAD_SCORE
    assigned_to: Assignee | None = None
    metadata: Metadata | None = None
    custom_fields: CustomFields | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.assigned_to = (self.assigned_to or "").strip() or None


class UpdateLead(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """PATCH body: any of status, assignedTo (null unassigns), leadScore, customFields (merged
    into the lead's; null removes a value)."""

    status: LeadStatus | None = None
    assigned_to: Assignee | msgspec.UnsetType | None = msgspec.UNSET
    lead_score: Score | None = None
    custom_fields: CustomFields | None = None

    def __post_init__(self) -> None:
        if (
            self.status is None
            and self.lead_score is None
            and self.assigned_to is msgspec.UNSET
            and self.custom_fields is None
        ):
            raise ValueError("status must be given, or assignedTo, leadScore or customFields")
        if isinstance(self.assigned_to, str):
            self.assigned_to = self.assigned_to.strip() or None


async def _locked_lead(conn: AsyncConnection, lead_id: uuid.UUID) -> Any:
    row = (await conn.execute(select(LEADS).where(LEADS.c.id == lead_id).with_for_update())).first()
    if row is None:
        raise NotFound(f"no lead with id {lead_id}", field="id")
    return row


def _lead_data(lead: Mapping[str, Any], **extra: object) -> dict[str, Any]:
    """The notification payload describing a lead."""
    return {
        "leadId": str(lead["id"]),
        "email": lead["email"],
        "name": lead["name"],
        "companyName": lead["company_name"],
        "phone": lead["phone"],
        "type": str(lead["type"]),
        "source": lead["source"],
        "status": str(lead["status"]),
        "leadScore": lead["lead_score"],
        "assignedTo": lead["assigned_to"],
        "customFields": lead.get("custom_fields") or {},
        **extra,
    }


def new_lead_notifications(
    lead: Mapping[str, Any],
    actor: str,
    now: datetime,
    routes: Iterable[Route],
    event: str = "created",
) -> Rows:
    """The NEW_LEAD outbox rows of a lead just written (by hand, by CSV import) or just
    assigned (the seed's purpose of NEW_LEAD: "lead assignment").

    One payload shape: leadId, email, name, companyName, phone, type, source, status,
    leadScore, assignedTo, customFields, event ("created" or "assigned"), createdBy (the staff
    member or CLI actor who caused this event), createdAt (when).
    """
    data = _lead_data(lead, event=event, createdBy=actor, createdAt=now.isoformat())
    return notification_rows(NotificationType.NEW_LEAD, data, routes, now, score=lead["lead_score"])


async def create_lead(
    conn: AsyncConnection, cmd: CreateLead, actor: str, routes: Iterable[Route]
) -> LeadView:
    """A lead entered by hand (the seed's "Creating Leads Manually"), with a NEW_LEAD event."""
    now = utcnow()
    lead_id = uuid.uuid4()
    custom = await checked_values(conn, CustomFieldEntity.LEAD, cmd.custom_fields, True)
    lead: dict[str, Any] = {
        "id": lead_id,
        "email": cmd.email,
        "name": cmd.name,
        "company_name": cmd.company_name,
        "phone": cmd.phone,
        "type": cmd.type,
        "source": MANUAL_LEAD_SOURCE,
        "status": LeadStatus.NEW,
        "lead_score": cmd.lead_score,
        "assigned_to": cmd.assigned_to,
        "metadata": {**(cmd.metadata or {}), "importedBy": actor, "importDate": now.isoformat()},
        "created_at": now,
        "updated_at": now,
        "converted_at": None,
        "custom_fields": merged(None, custom) or None,
    }
    notes = new_lead_notifications(lead, actor, now, routes)
    audit = audit_rows(
        lead_id,
        actor,
        now,
        "created",
        {
            "status": (None, LeadStatus.NEW),
            "assigned_to": (None, cmd.assigned_to),
            "lead_score": (None, cmd.lead_score),
        },
    )
    await insert_all(conn, [(LEADS, [lead]), (NOTIFICATIONS, notes), (LEAD_AUDIT, audit)])
    return lead_view(SimpleNamespace(**lead))  # the row as written, read like a DB row


async def update_lead(
    conn: AsyncConnection,
    lead_id: uuid.UUID,
    cmd: UpdateLead,
    actor: str,
    routes: Iterable[Route],
) -> LeadView:
    """Change status, assignee or score; a move to CONVERTED is a full conversion."""
    current = await _locked_lead(conn, lead_id)
    status = LeadStatus(current.status)
    if cmd.status is not None:
        check_transition(status, cmd.status)
    now = utcnow()
    values: dict[str, Any] = {}
    if cmd.assigned_to is not msgspec.UNSET and cmd.assigned_to != current.assigned_to:
        values["assigned_to"] = cmd.assigned_to
    if cmd.lead_score is not None and cmd.lead_score != current.lead_score:
        values["lead_score"] = cmd.lead_score
    custom_changes: dict[str, tuple[object, object]] = {}
    if cmd.custom_fields is not None:
        checked = await checked_values(conn, CustomFieldEntity.LEAD, cmd.custom_fields, False)
        before = current.custom_fields or {}
        after = merged(before, checked)
        if after != before:
            values["custom_fields"] = after
            custom_changes = {
                f"cf.{k}"[:32]: (before.get(k), after.get(k))
                for k in checked
                if before.get(k) != after.get(k)
            }
    converting = cmd.status == LeadStatus.CONVERTED and status != LeadStatus.CONVERTED
    if cmd.status is not None and cmd.status != status and not converting:
        values["status"] = cmd.status
    if values:
        await conn.execute(
            update(LEADS).where(LEADS.c.id == lead_id).values(**values, updated_at=now)
        )
        changes = {k: (getattr(current, k), v) for k, v in values.items() if k != "custom_fields"}
        changes.update(custom_changes)
        writes: list[tuple[Any, Rows]] = [
            (LEAD_AUDIT, audit_rows(lead_id, actor, now, "updated", changes))
        ]
        if values.get("assigned_to") is not None:  # (re)assigned to someone: NEW_LEAD
            lead = dict(current._mapping, **values)
            writes.append(
                (NOTIFICATIONS, new_lead_notifications(lead, actor, now, routes, "assigned"))
            )
        await insert_all(conn, writes)
        if values.get("status") == LeadStatus.CONTACTED:
            await mark_form_processed(conn, current.metadata)
    if converting:
        await convert_lead(conn, lead_id, actor, routes)
    row = (await conn.execute(select(LEADS).where(LEADS.c.id == lead_id))).one()
    return lead_view(row)


async def mark_form_processed(conn: AsyncConnection, metadata: Mapping[str, Any] | None) -> None:
    """The form a lead came from moves NEW -> PROCESSED once the lead is contacted."""
    form_id = (metadata or {}).get("formSubmissionId")
    if not form_id:
        return
    try:
        form_uuid = uuid.UUID(str(form_id))
    except ValueError:
        return
    await conn.execute(
        update(FORM_SUBMISSIONS)
        .where(
            FORM_SUBMISSIONS.c.id == form_uuid,
            FORM_SUBMISSIONS.c.status == FormSubmissionStatus.NEW,
        )
        .values(status=FormSubmissionStatus.PROCESSED)
    )


class Conversion(msgspec.Struct, rename="camel"):
    lead: LeadView
    customer_id: uuid.UUID
    customer_created: bool
    notification_ids: list[uuid.UUID]


async def convert_lead(
    conn: AsyncConnection, lead_id: uuid.UUID, actor: str, routes: Iterable[Route]
) -> Conversion:
    """Lead -> Customer: create one, or link the Customer that already has this email."""
    lead = await _locked_lead(conn, lead_id)
    status = LeadStatus(lead.status)
    if status == LeadStatus.CONVERTED:
        raise IllegalTransition("this lead is already CONVERTED")
    check_transition(status, LeadStatus.CONVERTED)
    return await _convert(conn, lead, actor, routes)


async def convert_open_leads(
    conn: AsyncConnection,
    email: str,
    actor: str,
    routes: Iterable[Route],
    via: Mapping[str, str],
) -> list[Conversion]:
    """The seed's lifecycle "CONVERTED: quote accepted": every open lead with this email is
    converted, whatever its stage, as `convert_lead` converts one (Customer made ACTIVE,
    LEAD_CONVERTED, audit entry). `via` says what converted them (kept in the lead's and
    customer's metadata and in the notification)."""
    leads = await conn.execute(
        select(LEADS)
        .where(LEADS.c.email == email, LEADS.c.status.in_(OPEN_LEAD_STATUSES))
        .order_by(LEADS.c.created_at, LEADS.c.id)
        .with_for_update()
    )
    return [await _convert(conn, lead, actor, routes, via) for lead in leads.all()]


async def _convert(
    conn: AsyncConnection,
    lead: Any,
    actor: str,
    routes: Iterable[Route],
    via: Mapping[str, str] | None = None,
) -> Conversion:
    """Convert a locked lead whose move was checked by the caller."""
    lead_id, status = lead.id, LeadStatus(lead.status)
    now = utcnow()
    conversion_meta = {
        "convertedFromLeadId": str(lead_id),
        "convertedDate": now.isoformat(),
        **(via or {}),
    }
    customer = await ensure_customer(
        conn,
        NewCustomer(
            email=lead.email,
            name=lead.name,
            company_name=lead.company_name,
            phone=lead.phone,
            source=CustomerSource.LEAD_CONVERSION,
            status=CustomerStatus.ACTIVE,
            metadata=conversion_meta,
        ),
        Adopt(status=CustomerStatus.ACTIVE, metadata=conversion_meta),
        now,
    )
    customer_id, created = customer.id, customer.created
    await conn.execute(
        update(LEADS)
        .where(LEADS.c.id == lead_id)
        .values(
            status=LeadStatus.CONVERTED,
            converted_at=now,
            updated_at=now,
            metadata={**(lead.metadata or {}), "customerId": str(customer_id), **(via or {})},
        )
    )
    converted = dict(lead._mapping, status=LeadStatus.CONVERTED)
    notes = notification_rows(
        NotificationType.LEAD_CONVERTED,
        _lead_data(
            converted,
            customerId=str(customer_id),
            customerCreated=created,
            convertedBy=actor,
            convertedAt=now.isoformat(),
            **(via or {}),
        ),
        routes,
        now,
        score=lead.lead_score,
    )
    audit = audit_rows(
        lead_id,
        actor,
        now,
        "converted",
        {"status": (status, LeadStatus.CONVERTED), "customer_id": (None, customer_id)},
    )
    await insert_all(conn, [(NOTIFICATIONS, notes), (LEAD_AUDIT, audit)])
    row = (await conn.execute(select(LEADS).where(LEADS.c.id == lead_id))).one()
    return Conversion(lead_view(row), customer_id, created, [n["id"] for n in notes])
