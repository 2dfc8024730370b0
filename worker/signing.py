"""Standard Webhooks signatures: moved to infra/webhooks.py (the API's test ping signs too)."""

from infra.webhooks import secret_key, signature, webhook_headers

__all__ = ["secret_key", "signature", "webhook_headers"]
