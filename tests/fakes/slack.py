"""A Slack incoming webhook (https://api.slack.com/messaging/webhooks): POST a JSON message to
/services/T/B/X; 200 `ok`, or a documented error code as a plain-text body."""

from __future__ import annotations

from tests.fakes.server import FakeServer, Request, Response

# Slack's documented error answers by code
ERRORS = {
    "invalid_payload": 400,
    "invalid_token": 403,
    "action_prohibited": 403,
    "channel_not_found": 404,
    "no_service": 404,
    "channel_is_archived": 410,
    "rollup_error": 500,
}


class FakeSlack(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.error: str | None = None  # answer every post with this documented error
        self.rate_limited_for: int | None = None  # 429 with this Retry-After

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/services/T0000/B0000/XXXXXXXX"

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or not request.path.startswith("/services/"):
            return Response(404, "no_service")
        if self.rate_limited_for is not None:
            return Response(429, "rate_limited", {"Retry-After": str(self.rate_limited_for)})
        if self.error:
            return Response(ERRORS[self.error], self.error)
        body = request.json
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return Response(400, "invalid_payload")
        return Response(200, "ok")

    def messages(self) -> list[dict]:
        return [r.json for r in self.calls("POST", "/services/")]
