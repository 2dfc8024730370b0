"""SQLAlchemy 2.0 models of the seed's entities, with its snake_case table and column names."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    case,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from domain.enums import (
    CustomerStatus,
    CustomerType,
    CustomFieldEntity,
    CustomFieldType,
    FormSubmissionStatus,
    LeadStatus,
    LeadType,
    MessageSender,
    NotificationPriority,
    NotificationStatus,
    NotificationType,
    QuoteEventType,
    QuoteStatus,
    SubscriberStatus,
    TargetKind,
    UserRole,
)
from domain.rules import PRIORITY_RANK

JSONType = JSON().with_variant(JSONB(), "postgresql")
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def enum_column(enum: type[StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint: enums are checked on write on every database."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        default=utcnow,
        onupdate=utcnow,
        server_default=text("CURRENT_TIMESTAMP"),
    )


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(enum_column(UserRole, "user_role"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Customer(TimestampMixin, Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(50))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    customer_type: Mapped[CustomerType] = mapped_column(enum_column(CustomerType, "customer_type"))
    status: Mapped[CustomerStatus] = mapped_column(
        enum_column(CustomerStatus, "customer_status"), default=CustomerStatus.ACTIVE
    )
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    quotes: Mapped[list[Quote]] = relationship(back_populates="customer")


class Lead(TimestampMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint("lead_score BETWEEN 0 AND 100", name="lead_score_range"),
        Index("idx_leads_email", "email"),
        Index("idx_leads_status", "status"),
        Index("idx_leads_created_at", text("created_at DESC")),
        Index("idx_leads_score_created", text("lead_score DESC"), text("created_at DESC")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    company_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    type: Mapped[LeadType] = mapped_column(enum_column(LeadType, "lead_type"))
    source: Mapped[str] = mapped_column(String(50))
    status: Mapped[LeadStatus] = mapped_column(
        enum_column(LeadStatus, "lead_status"), default=LeadStatus.NEW
    )
    lead_score: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    assigned_to: Mapped[str | None] = mapped_column(String(254))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class FormSubmission(Base):
    __tablename__ = "form_submissions"
    __table_args__ = (Index("idx_form_submissions_created_at", text("created_at DESC")),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # No CHECK: the form types are the keys of domain.rules.FORM_RULES, checked on input, so a
    # new form type is one entry in the rules and no migration.
    form_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    status: Mapped[FormSubmissionStatus] = mapped_column(
        enum_column(FormSubmissionStatus, "form_submission_status"),
        default=FormSubmissionStatus.NEW,
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )


class NewsletterSubscriber(Base):
    __tablename__ = "newsletter_subscribers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The unique constraint's index serves the seed's idx_newsletter_subscribers_email lookups.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    source: Mapped[str] = mapped_column(String(50))
    status: Mapped[SubscriberStatus] = mapped_column(
        enum_column(SubscriberStatus, "subscriber_status")
    )
    subscribed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)


class CrmNotification(Base):
    """The outbox: one row per event and target system, read once the target acknowledges.

    PostgreSQL: partitioned by RANGE (created_at), primary key (id, created_at) (migration
    0013, domain/outbox/partitions.py)."""

    __tablename__ = "crm_notifications"
    __table_args__ = (
        Index("idx_crm_notifications_read", "target_system", "read"),
        Index("idx_crm_notifications_created_at", text("created_at DESC")),
        # Serves the unread poll: per target, highest priority first, oldest first.
        # Serves the dispatcher's claim: due, pending rows by priority then age.
        Index(
            "idx_crm_notifications_due",
            text("priority_rank DESC"),
            "created_at",
            postgresql_where=text("read = false AND status = 'PENDING'"),
            sqlite_where=text("read = 0 AND status = 'PENDING'"),
        ),
        # Serves the claim's "is anything due?": a target's pending rows by due time, so
        # rows waiting in backoff cost nothing when none is due (issue 14, bench/scale.py).
        Index(
            "idx_crm_notifications_claim",
            "target_system",
            "next_attempt_at",
            postgresql_where=text("read = false AND status = 'PENDING'"),
            sqlite_where=text("read = 0 AND status = 'PENDING'"),
        ),
        Index(
            "idx_crm_notifications_unread",
            "target_system",
            text("priority_rank DESC"),
            "created_at",
            postgresql_where=text("read = false"),
            sqlite_where=text("read = 0"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    type: Mapped[NotificationType] = mapped_column(enum_column(NotificationType, "notif_type"))
    target_system: Mapped[str] = mapped_column(String(50))
    priority: Mapped[NotificationPriority] = mapped_column(
        enum_column(NotificationPriority, "notif_priority"), default=NotificationPriority.NORMAL
    )
    priority_rank: Mapped[int] = mapped_column(
        SmallInteger,
        Computed(
            case({p.value: r for p, r in PRIORITY_RANK.items()}, value=text("priority")),
            persisted=True,
        ),
    )
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    read: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Delivery state (push mode): due time, lease, attempts and dead-lettering.
    status: Mapped[NotificationStatus] = mapped_column(
        enum_column(NotificationStatus, "notif_status"),
        default=NotificationStatus.PENDING,
        server_default=NotificationStatus.PENDING.value,
    )
    # Every attempt ever made (the next attempt's number is attempts + 1; a replay keeps it) ...
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # ... and those counted against CRM_MAX_ATTEMPTS: a replay starts them over, a 429/503
    # with Retry-After does not add one.
    # A server default only: a Python-side one would keep the API's inserts from being one
    # grouped statement (domain/outbox/rows.py one_statement).
    counted_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(
        # A constant server default (due at once) so SQLite can add the column in place.
        DateTime(timezone=True),
        default=utcnow,
        server_default=text("'1970-01-01 00:00:00'"),
    )
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CrmNotificationAttempt(Base):
    """Every delivery attempt of a notification, for operators and the dashboard.

    PostgreSQL: partitioned by RANGE (started_at), primary key (id, started_at), and no
    foreign key (migration 0013); SQLite keeps the one declared here."""

    __tablename__ = "crm_notification_attempts"
    __table_args__ = (Index("idx_crm_notification_attempts_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("crm_notifications.id", ondelete="CASCADE"), index=True
    )
    target_system: Mapped[str] = mapped_column(String(50))
    attempt_number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(String(1024))


class CrmStatsSnapshot(Base):
    """Periodic figures, so dashboards show trends without scanning the big tables."""

    __tablename__ = "crm_stats_snapshots"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    total_leads: Mapped[int] = mapped_column(Integer)
    total_forms: Mapped[int] = mapped_column(Integer)
    total_subscribers: Mapped[int] = mapped_column(Integer)
    converted_leads: Mapped[int] = mapped_column(Integer)
    conversion_rate: Mapped[float] = mapped_column(Float)
    average_lead_score: Mapped[float | None] = mapped_column(Float)
    unread_notifications: Mapped[int] = mapped_column(Integer)
    failed_notifications: Mapped[int] = mapped_column(Integer)
    by_target: Mapped[dict[str, Any]] = mapped_column(JSONType)


class CrmLeadRollup(Base):
    """Lead counts and score sums per (type, status, source), kept by PostgreSQL triggers.

    Each writing statement on `leads` appends its delta rows in its own transaction (append
    only: no hot row for concurrent writers); the beat's snapshot folds them into one row per
    key (domain/reporting/rollups.py). The sum over all rows is always the exact count, so
    the dashboard reads some dozens of rows instead of scanning a million (issue 14).
    """

    __tablename__ = "crm_lead_rollups"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(50))
    leads: Mapped[int] = mapped_column(BigInteger)
    score_sum: Mapped[int] = mapped_column(BigInteger)


class CrmLeadDayRollup(Base):
    """New leads per UTC day of `created_at`, kept like CrmLeadRollup (the daily chart)."""

    __tablename__ = "crm_lead_day_rollups"
    __table_args__ = (Index("idx_crm_lead_day_rollups_day", "day"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    leads: Mapped[int] = mapped_column(BigInteger)


class CrmStatusRollup(Base):
    """Rows per status of form_submissions and newsletter_subscribers, kept like CrmLeadRollup."""

    __tablename__ = "crm_status_rollups"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    table_name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(32))
    row_count: Mapped[int] = mapped_column(BigInteger)


class CrmAlert(Base):
    """An alert episode (stale notifications, dead letters): opened once, closed when it clears."""

    __tablename__ = "crm_alerts"
    __table_args__ = (Index("idx_crm_alerts_open", "kind", "target_system", "closed_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    target_system: Mapped[str] = mapped_column(String(50))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class CrmTarget(TimestampMixin, Base):
    """A destination managed at run time (the registry); CRM_TARGET_<NAME>_* ones live in env.

    Signing secrets are stored sealed (infra/secretbox.py), never in clear; the previous one
    keeps signing beside the current one until `secret_previous_expires_at` (rotation).
    """

    __tablename__ = "crm_targets"
    __table_args__ = (
        CheckConstraint("name = upper(name) AND length(name) BETWEEN 1 AND 50", name="name_upper"),
        CheckConstraint(
            "rate_limit_per_second IS NULL OR rate_limit_per_second > 0", name="rate_positive"
        ),
        CheckConstraint("max_in_flight IS NULL OR max_in_flight > 0", name="in_flight_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    kind: Mapped[TargetKind] = mapped_column(enum_column(TargetKind, "target_kind"))
    url: Mapped[str] = mapped_column(Text)
    secret_current: Mapped[str] = mapped_column(Text)
    secret_previous: Mapped[str | None] = mapped_column(Text)
    secret_previous_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    events: Mapped[list[str] | None] = mapped_column(JSONType)  # NULL: every type
    min_priority: Mapped[NotificationPriority | None] = mapped_column(
        enum_column(NotificationPriority, "target_min_priority")
    )
    rate_limit_per_second: Mapped[float | None] = mapped_column(Float)
    max_in_flight: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Kind-specific settings (exchange, stream, apiVersion, mapping...): shown.
    options: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict, server_default=text("'{}'")
    )
    # Sealed (infra/secretbox.py) JSON: {"credentials": {...}, "url": <url with its password>}.
    credentials: Mapped[str | None] = mapped_column(Text)


class Quote(TimestampMixin, Base):
    __tablename__ = "quotes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[QuoteStatus] = mapped_column(
        enum_column(QuoteStatus, "quote_status"), default=QuoteStatus.SUBMITTED
    )
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    company_name: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    message: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    # Set by staff pricing (SUBMITTED/NEGOTIATING -> QUOTED): ISO 4217 code, offer deadline.
    currency: Mapped[str | None] = mapped_column(String(3))
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    priced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    customer: Mapped[Customer] = relationship(back_populates="quotes")
    lines: Mapped[list[QuoteLine]] = relationship(
        back_populates="quote", order_by="QuoteLine.position"
    )


class QuoteLine(Base):
    __tablename__ = "quote_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    quote_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quotes.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str | None] = mapped_column(String(32))
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))

    quote: Mapped[Quote] = relationship(back_populates="lines")


class QuoteEvent(Base):
    __tablename__ = "quote_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    quote_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quotes.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[QuoteEventType] = mapped_column(enum_column(QuoteEventType, "quote_event_type"))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    actor: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )


class NegotiationMessage(Base):
    __tablename__ = "negotiation_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    quote_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("quotes.id", ondelete="CASCADE"), index=True
    )
    sender: Mapped[MessageSender] = mapped_column(enum_column(MessageSender, "message_sender"))
    sender_id: Mapped[str | None] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("CURRENT_TIMESTAMP")
    )


class IdempotencyKey(Base):
    """First response to a request carrying an Idempotency-Key, replayed for repeats."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        default=utcnow,
        server_default=text("CURRENT_TIMESTAMP"),
        index=True,
    )


class LeadAuditEntry(Base):
    """One change of a lead (status, assignee, score, conversion): who, when, from, to."""

    __tablename__ = "lead_audit_entries"
    __table_args__ = (Index("idx_lead_audit_entries_lead", "lead_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(254))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(32))
    from_value: Mapped[str | None] = mapped_column(String(254))
    to_value: Mapped[str | None] = mapped_column(String(254))


class CrmTargetState(Base):
    """A destination's run-time health, kept by the worker's guardrails (worker/guardrails.py):
    disabled (with why and when), failing since when, last success, last error. One row per
    target name, env-declared or registry-managed alike."""

    __tablename__ = "crm_target_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CustomerAuditEntry(Base):
    """One change of a customer (type, status, names, enrichment, custom fields): who, when,
    which field, from which value to which."""

    __tablename__ = "customer_audit"
    __table_args__ = (Index("idx_customer_audit_customer", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(254))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(100))
    from_value: Mapped[str | None] = mapped_column(Text)
    to_value: Mapped[str | None] = mapped_column(Text)


class CrmCustomField(TimestampMixin, Base):
    """An admin-defined, typed field of leads or customers (seed section 15); values live in
    the row's `custom_fields` JSON under `key`."""

    __tablename__ = "crm_custom_fields"
    __table_args__ = (UniqueConstraint("entity", "key", name="uq_crm_custom_fields_entity_key"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    entity: Mapped[CustomFieldEntity] = mapped_column(
        enum_column(CustomFieldEntity, "custom_field_entity")
    )
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[CustomFieldType] = mapped_column(enum_column(CustomFieldType, "custom_field_type"))
    options: Mapped[list[str] | None] = mapped_column(JSONType)
    required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class CrmInboundEvent(Base):
    """A signed change a destination sent us (POST /api/v1/inbound/{target}), kept by its
    `webhook-id` so a replay of the same message changes nothing (domain/leads/inbound.py).
    Ids are the sender's, so they are unique per destination; old ones are dropped daily."""

    __tablename__ = "crm_inbound_events"
    __table_args__ = (Index("idx_crm_inbound_events_received", "received_at"),)

    target: Mapped[str] = mapped_column(String(50), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def table_of(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


USERS = table_of(User)
CUSTOMERS = table_of(Customer)
LEADS = table_of(Lead)
FORM_SUBMISSIONS = table_of(FormSubmission)
SUBSCRIBERS = table_of(NewsletterSubscriber)
NOTIFICATIONS = table_of(CrmNotification)
QUOTES = table_of(Quote)
QUOTE_LINES = table_of(QuoteLine)
QUOTE_EVENTS = table_of(QuoteEvent)
NEGOTIATION_MESSAGES = table_of(NegotiationMessage)
IDEMPOTENCY_KEYS = table_of(IdempotencyKey)
ATTEMPTS = table_of(CrmNotificationAttempt)
SNAPSHOTS = table_of(CrmStatsSnapshot)
ALERTS = table_of(CrmAlert)
LEAD_ROLLUPS = table_of(CrmLeadRollup)
LEAD_DAY_ROLLUPS = table_of(CrmLeadDayRollup)
STATUS_ROLLUPS = table_of(CrmStatusRollup)
LEAD_AUDIT = table_of(LeadAuditEntry)
TARGETS = table_of(CrmTarget)
TARGET_STATE = table_of(CrmTargetState)
CUSTOMER_AUDIT = table_of(CustomerAuditEntry)
CUSTOM_FIELDS = table_of(CrmCustomField)
INBOUND_EVENTS = table_of(CrmInboundEvent)

# Keyset pagination of the admin lists: each sort order has an index ending in the id tiebreak.
Index(
    "idx_leads_keyset_score",
    LEADS.c.lead_score.desc(),
    LEADS.c.created_at.desc(),
    LEADS.c.id.desc(),
)
Index("idx_leads_keyset_created", LEADS.c.created_at.desc(), LEADS.c.id.desc())
Index(
    "idx_leads_status_keyset_score",
    LEADS.c.status,
    LEADS.c.lead_score.desc(),
    LEADS.c.created_at.desc(),
    LEADS.c.id.desc(),
)
Index(
    "idx_form_submissions_keyset",
    FORM_SUBMISSIONS.c.created_at.desc(),
    FORM_SUBMISSIONS.c.id.desc(),
)
Index(
    "idx_newsletter_subscribers_keyset", SUBSCRIBERS.c.subscribed_at.desc(), SUBSCRIBERS.c.id.desc()
)
# The quote lists (admin: all, by status, by customer; a customer's own), newest first.
Index("idx_quotes_keyset", QUOTES.c.created_at.desc(), QUOTES.c.id.desc())
Index("idx_quotes_status_keyset", QUOTES.c.status, QUOTES.c.created_at.desc(), QUOTES.c.id.desc())
Index(
    "idx_quotes_customer_keyset",
    QUOTES.c.customer_id,
    QUOTES.c.created_at.desc(),
    QUOTES.c.id.desc(),
)
Index("idx_crm_notifications_keyset", NOTIFICATIONS.c.created_at.desc(), NOTIFICATIONS.c.id.desc())
Index("idx_customers_keyset", CUSTOMERS.c.created_at.desc(), CUSTOMERS.c.id.desc())
# Issue 14's reads at a million rows (migration 0012): leads of one source in the default
# (score) order; failed and pending notifications newest first, the failed one carrying the
# target so "failed per target" is an index-only count.
Index(
    "idx_leads_source_keyset_score",
    LEADS.c.source,
    LEADS.c.lead_score.desc(),
    LEADS.c.created_at.desc(),
    LEADS.c.id.desc(),
)
Index(
    "idx_crm_notifications_failed",
    NOTIFICATIONS.c.created_at.desc(),
    NOTIFICATIONS.c.id.desc(),
    postgresql_include=["target_system", "read"],
    postgresql_where=text("status = 'FAILED'"),
    sqlite_where=text("status = 'FAILED'"),
)
Index(
    "idx_crm_notifications_pending",
    NOTIFICATIONS.c.created_at.desc(),
    NOTIFICATIONS.c.id.desc(),
    postgresql_where=text("status = 'PENDING'"),
    sqlite_where=text("status = 'PENDING'"),
)
