"""Send alerts: a structured WARNING log line, and a Slack-compatible POST when configured."""

from __future__ import annotations

import logging

import httpx

from domain.outbox.alerts import AlertEvent
from infra.settings import Settings

log = logging.getLogger("crm.alerts")


def send_alert(settings: Settings, event: AlertEvent) -> None:
    level = logging.WARNING if event.state == "raised" else logging.INFO
    log.log(
        level,
        "alert %s %s target=%s details=%s",
        event.kind,
        event.state,
        event.target_system,
        {k: v for k, v in event.details.items() if k != "notificationIds"},
    )
    if settings.alert_webhook_url is None:
        return
    try:
        # Never follow a redirect (httpx's default, said out loud): the hook URL holds a token,
        # and a 3xx must not send the alert on to whatever host Location names.
        answer = httpx.post(
            settings.alert_webhook_url.get(),
            json={"text": event.text},
            timeout=5.0,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        log.warning("alert webhook unreachable: %s", type(exc).__name__)
        return
    if not answer.is_success:
        log.warning(
            "alert webhook answered HTTP %d%s",
            answer.status_code,
            " (redirect not followed)" if answer.is_redirect else "",
        )
