"""`slack`: one message per notification to a Slack incoming webhook (issue 12, item 3).

Slack answers a webhook post with a plain-text body: `ok` on 200, else an error code
(https://api.slack.com/messaging/webhooks#handling_errors): 400 `invalid_payload` /
`invalid_token`, 403 `action_prohibited`, 404 `channel_not_found` / `no_service`, 410
`channel_is_archived`, 429 with Retry-After when rate limited, 5xx `rollup_error`. Posts go one
at a time (Slack allows about one message a second per webhook); an answer about the webhook
itself (the channel is gone, the token revoked, a rate limit) settles the rest of the batch
without posting them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from domain.enums import NotificationType
from infra.settings import Target
from worker.connectors.base import Outcome, Outgoing, Sent, elapsed_ms
from worker.connectors.leads import (
    HttpConnector,
    all_sent,
    excerpt,
    transport_error,
)
from worker.transport import parse_retry_after

# What happened, in words, per notification type (the message's first line).
HEADLINES: dict[str, str] = {
    NotificationType.NEW_FORM_SUBMISSION: "New form submission",
    NotificationType.NEW_LEAD: "New lead",
    NotificationType.QUOTE_REQUEST: "New quote request",
    NotificationType.NEWSLETTER_SIGNUP: "Newsletter sign-up",
    NotificationType.NEW_CUSTOMER: "New customer",
    NotificationType.LEAD_CONVERTED: "Lead converted",
    NotificationType.QUOTE_STATUS_CHANGED: "Quote status changed",
    NotificationType.QUOTE_MESSAGE: "New quote message",
    NotificationType.CUSTOMER_UPDATED: "Customer updated",
    NotificationType.CUSTOMER_DEACTIVATED: "Customer deactivated",
}
# (label, payload key, fallback key) of the message's fields, in order.
FIELDS = (
    ("Name", "name", None),
    ("Company", "companyName", None),
    ("Email", "email", None),
    ("Score", "leadScore", None),
    ("Type", "type", "formType"),
    ("Source", "source", None),
)
# Answers about the webhook itself, not one message: the rest of the batch fails the same way.
WEBHOOK_ERRORS = frozenset(
    {
        "invalid_token",
        "action_prohibited",
        "channel_not_found",
        "no_service",
        "no_team",
        "team_disabled",
        "channel_is_archived",
        "no_active_hooks",
    }
)
RETRY_AFTER_DEFAULT = 30.0  # a 429 without Retry-After (Slack always sends one)


def _escape(text: object) -> str:
    """Slack mrkdwn's three control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _value(data: Mapping[str, Any], key: str, fallback: str | None) -> Any:
    value = data.get(key)
    if value in (None, "") and fallback:
        value = data.get(fallback)
    if value in (None, "") and key == "source" and data.get("formSubmissionId"):
        value = "web_form"  # a NEW_FORM_SUBMISSION is always from the web form
    return value


def message(
    notification_type: str, priority: str, data: Mapping[str, Any], public_url: str
) -> dict[str, Any]:
    """The Slack body: `text` (the notification's one-line fallback) and Block Kit `blocks`."""
    headline = HEADLINES.get(notification_type, notification_type.replace("_", " ").capitalize())
    who = data.get("name") or data.get("email") or ""
    company = data.get("companyName")
    text = f"{headline}: {who}" + (f" ({company})" if company else "") + f" [{priority}]"
    fields = [
        {"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"}
        for label, key, fallback in FIELDS
        if (value := _value(data, key, fallback)) not in (None, "")
    ]
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{_escape(headline)}* ({_escape(priority)})"},
        }
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields[:10]})  # Slack's cap: 10 fields
    lead_id = data.get("leadId")
    if lead_id:
        link = f"{public_url.rstrip('/')}/admin/leads/{lead_id}"
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{link}|Open the lead in crm-sync>"},
            }
        )
        text += f" {link}"
    return {"text": text, "blocks": blocks}


class SlackConnector(HttpConnector):
    kind: ClassVar[str] = "slack"
    options: ClassVar[frozenset[str]] = frozenset({"minPriority"})
    mapped: ClassVar[bool] = False

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        if not target.url:
            return all_sent(list(batch), Outcome.FAIL, 0.0, error="slack: no webhook url")
        results: list[Sent] = []
        items = list(batch)
        for index, item in enumerate(items):
            sent, stop = await self._post(target.url, item)
            results.append(sent)
            if stop:
                rest = items[index + 1 :]
                results.extend(
                    all_sent(
                        rest,
                        sent.outcome,
                        0.0,
                        status=sent.status,
                        error=sent.error,
                        retry_after=sent.retry_after,
                        pause=sent.pause,
                        disable=sent.disable,
                    )
                )
                break
        return results

    async def _post(self, url: str, item: Outgoing) -> tuple[Sent, bool]:
        """One message; True when the answer settles the rest of the batch too."""
        n = item.notification
        body = message(n.type, n.priority, n.data, self.settings.public_url)
        started = time.perf_counter()
        try:
            resp = await self.client.post(url, json=body)
        except httpx.HTTPError as exc:
            error = transport_error(exc)
            return Sent(n.id, Outcome.RETRY, elapsed_ms(started), error=error), True
        took, status, answer = elapsed_ms(started), resp.status_code, resp.text.strip()
        if status == 200:
            return Sent(n.id, Outcome.ACK, took, status, response_excerpt=excerpt(resp)), False
        error = f"slack: HTTP {status} {answer[:200]}".strip()
        if status == 429:
            wait = parse_retry_after(resp.headers.get("Retry-After")) or RETRY_AFTER_DEFAULT
            return Sent(n.id, Outcome.RETRY, took, status, error, wait, pause=True), True
        if status >= 500:  # Slack's own trouble (rollup_error): later, and not the rest now
            return Sent(
                n.id, Outcome.RETRY, took, status, error, response_excerpt=excerpt(resp)
            ), True
        gone = status == 410
        whole = gone or status in (403, 404) or answer in WEBHOOK_ERRORS
        sent = Sent(
            n.id, Outcome.FAIL, took, status, error, disable=gone, response_excerpt=excerpt(resp)
        )
        return sent, whole


CONNECTOR = SlackConnector
