"""Leads: lifecycle, queries, CSV import/export and the audit trail."""
