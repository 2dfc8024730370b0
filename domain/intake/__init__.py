"""Intake: public forms, newsletter, registration and RFQ use cases, spam and idempotency."""
