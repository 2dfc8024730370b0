"""Reporting: CRM stats, monitoring metrics and the admin overview."""
