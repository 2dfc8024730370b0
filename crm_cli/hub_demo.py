"""`crm hub-demo`: a tiny BZION_HUB stand-in that verifies each signature and prints the event."""

from __future__ import annotations

import json

import click
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def make_app(secret: str) -> web.Application:
    verifier = Webhook(secret)

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verifier.verify(body, dict(request.headers))
        except WebhookVerificationError as exc:
            click.secho(f"REJECTED {request.headers.get('webhook-id')}: {exc}", fg="red")
            return web.json_response({"error": "invalid signature"}, status=401)
        event = json.loads(body)
        data = event.get("data", {})
        click.secho(
            f"{event['priority']:<6} {event['type']:<20} {data.get('email', '')} "
            f"(id {event['id']}, signature verified)",
            fg="green",
        )
        return web.json_response({"received": event["id"]})

    app = web.Application()
    app.router.add_post("/webhook", receive)
    return app


def serve(host: str, port: int, secret: str) -> None:
    click.echo(f"hub-demo listening on http://{host}:{port}/webhook", err=True)
    web.run_app(make_app(secret), host=host, port=port, print=None)
