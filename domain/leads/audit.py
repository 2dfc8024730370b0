"""The lead audit trail: who changed what on a lead, when, from which value to which."""

from __future__ import annotations

from domain.audit import AuditTrail
from domain.models import LEAD_AUDIT

# Lead fields whose changes are audited, by their column name.
AUDITED_FIELDS = ("status", "assigned_to", "lead_score")

LEAD_TRAIL = AuditTrail(LEAD_AUDIT, "lead_id", max_value_length=254)
audit_rows = LEAD_TRAIL.rows
lead_history = LEAD_TRAIL.history
