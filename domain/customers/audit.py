"""The customer audit trail: who changed which field of a customer (in the API's camelCase
names), when, from what to what."""

from __future__ import annotations

from domain.audit import AuditTrail
from domain.models import CUSTOMER_AUDIT

CUSTOMER_TRAIL = AuditTrail(CUSTOMER_AUDIT, "customer_id")
customer_audit_rows = CUSTOMER_TRAIL.rows
customer_history = CUSTOMER_TRAIL.history
