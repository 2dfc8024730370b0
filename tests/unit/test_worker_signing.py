"""Our signatures verify with the standardwebhooks library (never with our own code)."""

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from infra.settings import Secret
from worker.signing import secret_key, webhook_headers

OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_dGhpcyBpcyBhIHNlY29uZCBrZXkhISE="


def test_signature_verifies_with_the_standard_library():
    body = b'{"id":"n-1","type":"NEW_LEAD"}'
    headers = webhook_headers([secret_key(Secret(OLD))], "n-1", int(time.time()), body)
    assert headers["webhook-id"] == "n-1" and headers["webhook-signature"].startswith("v1,")
    assert Webhook(OLD).verify(body, headers) == {"id": "n-1", "type": "NEW_LEAD"}


def test_a_tampered_body_or_another_secret_fails_verification():
    body = b'{"id":"n-1"}'
    headers = webhook_headers([secret_key(Secret(OLD))], "n-1", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(b'{"id":"n-2"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(body, headers)


def test_during_rotation_both_secrets_verify():
    body = b"{}"
    keys = [secret_key(Secret(OLD)), secret_key(Secret(NEW))]
    headers = webhook_headers(keys, "n-9", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(OLD).verify(body, headers)
    Webhook(NEW).verify(body, headers)
