"""Standard Webhooks: signatures (v1,<base64 HMAC-SHA256 of "id.timestamp.body">) and one
signed POST outside the delivery hot path (a destination's test ping, from the API).

The worker's hot path posts with worker/http1.py (worker/transport.py) but signs with these functions.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from infra.settings import Secret


def secret_key(secret: Secret) -> bytes:
    return base64.b64decode(secret.get().removeprefix("whsec_"))


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    # hmac.digest: OpenSSL's one-shot HMAC, no HMAC object per request (the delivery hot path)
    return "v1," + base64.b64encode(hmac.digest(key, signed, "sha256")).decode()


def webhook_headers(
    keys: Iterable[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Headers of one delivery; one signature per active secret (rotation)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, msg_id, timestamp, body) for k in keys),
        "content-type": "application/json",
    }


@dataclass(frozen=True, slots=True)
class Sent:
    status: int | None
    duration_ms: float
    error: str | None


async def send_signed(
    url: str, secrets: Iterable[Secret], msg_id: str, body: bytes, timeout: float
) -> Sent:
    """POST `body` once, signed with every secret, never following a redirect (a 3xx is an
    error: following would send the signed headers wherever `Location` says)."""
    headers = webhook_headers([secret_key(s) for s in secrets], msg_id, int(time.time()), body)
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client:
            r = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return Sent(None, _ms(started), "timeout")
    except httpx.HTTPError as exc:
        return Sent(None, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
    error = None
    if 300 <= r.status_code < 400:
        error = "redirect not followed"
    elif not 200 <= r.status_code < 300:
        error = f"HTTP {r.status_code}"
    return Sent(r.status_code, _ms(started), error)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 1)
