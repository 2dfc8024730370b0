"""Closed sets of the seed, as Python enums. Stored as strings with a CHECK constraint."""

from enum import StrEnum


class FormType(StrEnum):
    CONTACT_US = "contact_us"
    QUOTE_REQUEST = "quote_request"
    PARTNERSHIP_INQUIRY = "partnership_inquiry"


class FormSubmissionStatus(StrEnum):
    NEW = "NEW"
    PROCESSED = "PROCESSED"
    SPAM = "SPAM"


class LeadType(StrEnum):
    LEAD = "LEAD"
    CONTACT_REQUEST = "CONTACT_REQUEST"
    QUOTE_REQUEST = "QUOTE_REQUEST"


class LeadStatus(StrEnum):
    NEW = "NEW"
    CONTACTED = "CONTACTED"
    QUALIFIED = "QUALIFIED"
    CONVERTED = "CONVERTED"
    REJECTED = "REJECTED"


class CustomerType(StrEnum):
    RETAILER = "RETAILER"
    DISTRIBUTOR = "DISTRIBUTOR"
    WHOLESALER = "WHOLESALER"


class CustomerStatus(StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    PROSPECT = "PROSPECT"


class CustomerSource(StrEnum):
    B2B_PLATFORM = "B2B_PLATFORM"
    IMPORT = "IMPORT"
    API = "API"
    LEAD_CONVERSION = "LEAD_CONVERSION"
    RFQ = "RFQ"


class SubscriberStatus(StrEnum):
    SUBSCRIBED = "SUBSCRIBED"
    UNSUBSCRIBED = "UNSUBSCRIBED"


class NotificationType(StrEnum):
    NEW_FORM_SUBMISSION = "NEW_FORM_SUBMISSION"
    NEW_LEAD = "NEW_LEAD"
    QUOTE_REQUEST = "QUOTE_REQUEST"
    NEWSLETTER_SIGNUP = "NEWSLETTER_SIGNUP"
    NEW_CUSTOMER = "NEW_CUSTOMER"
    LEAD_CONVERTED = "LEAD_CONVERTED"
    QUOTE_STATUS_CHANGED = "QUOTE_STATUS_CHANGED"
    QUOTE_MESSAGE = "QUOTE_MESSAGE"
    CUSTOMER_UPDATED = "CUSTOMER_UPDATED"
    CUSTOMER_DEACTIVATED = "CUSTOMER_DEACTIVATED"


class NotificationPriority(StrEnum):
    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"


class TargetKind(StrEnum):
    """How a destination receives notifications: a signed webhook, or a connector
    (worker/connectors/<kind>.py) speaking the receiving system's own protocol."""

    WEBHOOK = "webhook"
    RABBITMQ = "rabbitmq"
    NATS = "nats"
    SLACK = "slack"
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"
    PIPEDRIVE = "pipedrive"


class NotificationStatus(StrEnum):
    """Delivery state of an outbox row; `read` stays the seed's acknowledgement flag."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class UserRole(StrEnum):
    CUSTOMER = "customer"
    ADMIN = "admin"
    SALES = "sales"  # staff who work leads and customers; admin-only settings stay closed


class CustomFieldEntity(StrEnum):
    LEAD = "lead"
    CUSTOMER = "customer"


class CustomFieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    SELECT = "select"


class QuoteStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    QUOTED = "QUOTED"
    NEGOTIATING = "NEGOTIATING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class QuoteEventType(StrEnum):
    CREATED = "CREATED"
    MESSAGE = "MESSAGE"
    STATUS_CHANGED = "STATUS_CHANGED"
    PRICED = "PRICED"


class QuoteActor(StrEnum):
    """Who moves a quote: staff (admin/sales), the signed-in customer, or the expiry task."""

    STAFF = "STAFF"
    CUSTOMER = "CUSTOMER"
    SYSTEM = "SYSTEM"


class MessageSender(StrEnum):
    CUSTOMER = "CUSTOMER"
    SALES = "SALES"
