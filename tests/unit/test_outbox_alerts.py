"""The alert sender posts a Slack-compatible body and never lets a dead alert hook escape."""

import logging

import httpx
import respx

from domain.outbox.alerts import DEAD_LETTER, STALE, AlertEvent
from infra.settings import Settings

HOOK = "https://hooks.slack.example/services/T000/B000/SECRET-TOKEN"


def _settings(**env: str) -> Settings:
    return Settings.from_env({"CRM_ALERT_WEBHOOK_URL": HOOK, **env})


@respx.mock
def test_alert_posts_text_to_the_webhook():
    from worker.alerts import send_alert

    route = respx.post(HOOK).mock(return_value=httpx.Response(200))
    event = AlertEvent(
        STALE,
        "BZION_HUB",
        "raised",
        {"count": 3, "oldest": "2026-01-01T00:00:00Z", "staleAfterSeconds": 3600},
    )
    send_alert(_settings(), event)
    assert route.called
    body = route.calls.last.request.content.decode()
    assert '"text"' in body and "3 notification(s) to BZION_HUB" in body


@respx.mock
def test_an_unreachable_alert_hook_is_logged_without_its_url(caplog):
    from worker.alerts import send_alert

    respx.post(HOOK).mock(side_effect=httpx.ConnectError("down"))
    event = AlertEvent(
        DEAD_LETTER,
        "SALESFORCE",
        "raised",
        {"count": 1, "notificationIds": ["x"], "lastError": "HTTP 410"},
    )
    with caplog.at_level(logging.WARNING):
        send_alert(_settings(), event)
    assert "alert webhook unreachable" in caplog.text
    assert "SECRET-TOKEN" not in caplog.text
    assert "dead_letter raised" in caplog.text


@respx.mock
def test_an_alert_hook_redirect_is_not_followed(caplog):
    from worker.alerts import send_alert

    elsewhere = respx.route(host="elsewhere.example").mock(return_value=httpx.Response(200))
    respx.post(HOOK).mock(
        return_value=httpx.Response(302, headers={"Location": "https://elsewhere.example/x"})
    )
    event = AlertEvent(
        STALE, "BZION_HUB", "raised", {"count": 1, "oldest": "x", "staleAfterSeconds": 60}
    )
    with caplog.at_level(logging.WARNING):
        send_alert(_settings(), event)
    assert not elsewhere.called
    assert "alert webhook answered HTTP 302 (redirect not followed)" in caplog.text
