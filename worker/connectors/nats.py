"""`nats`: each notification published to a JetStream stream, acknowledged on its PubAck.

Subject `<subjectPrefix>.<TYPE>` (default prefix `crm.events`), stream `CRM_EVENTS` created on
`<subjectPrefix>.>` if absent, header `Nats-Msg-Id` = the notification id, so JetStream drops
a retry of a message it already stored (within the stream's duplicate window, 2 min by
default), and the Standard Webhooks headers for consumers to verify.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from domain.destinations import kinds
from infra.settings import Secret, Target
from worker.connectors.base import Outcome, Outgoing, Sent, describe_error, sent_for

log = logging.getLogger("crm.connectors.nats")
DEFAULT_STREAM = "CRM_EVENTS"
DEFAULT_PREFIX = "crm.events"
CONNECT_TIMEOUT = 5.0


class NatsConnector:
    """One connection per server URL and worker process; streams checked once per connection."""

    kind: ClassVar[str] = "nats"

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._streams: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()

    @classmethod
    def validate(
        cls, url: str | None, options: Mapping[str, object], credentials: Mapping[str, Secret]
    ) -> None:
        kinds.validate(cls.kind, url, options, credentials)

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        assert target.url is not None
        started = time.perf_counter()
        stream = str(target.options.get("stream") or DEFAULT_STREAM)
        prefix = str(target.options.get("subjectPrefix") or DEFAULT_PREFIX)
        try:
            client = await self._client(target)
            await self._ensure_stream(target.url, client, stream, prefix)
        except (NatsError, OSError, TimeoutError) as exc:
            await self._forget(target.url)
            return [
                sent_for(o, Outcome.RETRY, started, f"connection error: {describe_error(exc)}")
                for o in batch
            ]
        js = client.jetstream()

        async def one(o: Outgoing) -> Sent:
            headers = {**o.headers, "Nats-Msg-Id": str(o.notification.id)}
            began = time.perf_counter()
            try:
                await js.publish(
                    f"{prefix}.{o.notification.type}", o.body, stream=stream, headers=headers
                )
            except (NatsError, OSError, TimeoutError) as exc:
                return sent_for(o, Outcome.RETRY, began, f"no PubAck: {describe_error(exc)}")
            return sent_for(o, Outcome.ACK, began)  # stored now, or already (a duplicate)

        sent = list(await asyncio.gather(*(one(o) for o in batch)))
        if client.is_closed:
            await self._forget(target.url)
        return sent

    async def _client(self, target: Target) -> Client:
        url = target.url
        assert url is not None
        async with self._lock:
            client = self._clients.get(url)
            if client is None or client.is_closed:
                creds: dict[str, Any] = {k: v.get() for k, v in target.credentials.items()}
                client = await nats.connect(
                    url,
                    connect_timeout=CONNECT_TIMEOUT,
                    max_reconnect_attempts=3,
                    reconnect_time_wait=0.5,
                    **creds,  # token, user, password (domain/destinations/kinds.py)
                )
                self._clients[url] = client
                self._streams = {s for s in self._streams if s[0] != url}
                log.info("connected to %s", kinds.mask_url(self.kind, url))
            return client

    async def _ensure_stream(self, url: str, client: Client, stream: str, prefix: str) -> None:
        if (url, stream) in self._streams:
            return
        js = client.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
            log.info("created stream %s on %s.>", stream, prefix)
        self._streams.add((url, stream))

    async def _forget(self, url: str) -> None:
        async with self._lock:
            client = self._clients.pop(url, None)
            self._streams = {s for s in self._streams if s[0] != url}
        if client is not None and not client.is_closed:
            try:
                await asyncio.wait_for(client.close(), CONNECT_TIMEOUT)
            except Exception as exc:  # already gone: nothing to release
                log.debug("closing a lost connection: %s", exc)

    async def close(self) -> None:
        for url in list(self._clients):
            await self._forget(url)


CONNECTOR = NatsConnector
