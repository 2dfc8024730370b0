"""Outgoing notifications as the dispatcher builds them: a `Claimed` row of the outbox, its
webhook JSON body and its Standard Webhooks headers (infra/webhooks.py)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from domain.outbox.delivery import Claimed
from infra.settings import Secret
from infra.webhooks import secret_key, webhook_headers
from worker.connectors.base import Outgoing

SECRET = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def lead_data(n: int = 0, **extra: Any) -> dict[str, Any]:
    """A lead's payload as domain/leads/lifecycle.py `_lead_data` writes it."""
    return {
        "leadId": str(uuid.uuid4()),
        "email": f"ada{n}@example.com",
        "name": f"Ada Lovelace{n}",
        "companyName": "Analytical Engines Ltd",
        "phone": "+44 20 7946 0000",
        "type": "QUOTE_REQUEST",
        "source": "web_form",
        "status": "NEW",
        "leadScore": 80,
        "assignedTo": None,
        "customFields": {},
        "event": "created",
        **extra,
    }


def outgoing(
    data: dict[str, Any],
    notification_type: str = "NEW_LEAD",
    priority: str = "HIGH",
    target: str = "CRM",
) -> Outgoing:
    claimed = Claimed(
        id=uuid.uuid4(),
        type=notification_type,
        target_system=target,
        priority=priority,
        data=data,
        created_at=datetime.now(UTC),
        attempts=0,
        request_id=None,
    )
    body = json.dumps(claimed.payload()).encode()
    headers = webhook_headers([secret_key(SECRET)], str(claimed.id), int(time.time()), body)
    return Outgoing(claimed, body, headers)
