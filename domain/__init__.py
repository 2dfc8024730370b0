"""crm-sync's business, one line per package; imports neither Litestar nor Celery.

rules.py       the one rulebook: scores, lead types, priorities, status moves, routing, retry policy
models.py      the tables (SQLAlchemy 2 Mapped classes) and their indexes
enums.py       closed sets: form, lead, customer, notification and quote kinds and statuses
errors.py      domain exceptions; api/errors.py maps each to an HTTP status in one table
audit.py       AuditTrail: one entry per changed field, for leads and customers alike
customers/     ensure_customer, list/show/edit, deactivate/reactivate, audit, user links repair
custom_fields/ admin-defined typed fields of leads and customers: definitions, value checks
destinations/  target systems at run time: registry, directory, kinds and mappings, guardrails,
               health, test ping, replay, inbound status changes
intake/        public use cases: forms, newsletter, registration, RFQ, spam check, idempotency
leads/         lead lifecycle (create, update, convert), queries, CSV import/export, audit trail
outbox/        notification rows, delivery bookkeeping (claim/record/release/replay/ack),
               the reads (unread per target, pull list: queries.py), alerts, retention and
               PostgreSQL's time partitions (partitions.py)
quotes/        quote lifecycle: pricing, negotiation messages, accept/reject, expiry
reporting/     stats cards and snapshots, monitoring figures, the admin overview
accounts/      users (staff and customers), password policy and hashing, sign-in throttling

Platform code (settings, engines, group commit, logs, metrics, migrations, keyset pagination)
lives in `infra/`, which everything may use; `api/` (HTTP) and `worker/` (Celery) call in here.
"""
