"""crm-sync domain: models, rules and use cases. Imports neither Litestar nor Celery."""
