"""The real RabbitMQ and NATS of this machine, seen from a test: a private queue or stream
per test run (unique names), read with the clients' own libraries."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import nats

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Message:
    body: bytes
    headers: dict[str, str]
    message_id: str | None
    routing_key: str | None
    content_type: str | None
    persistent: bool


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RabbitQueue:
    """A durable test queue bound to `exchange` (declared as the connector declares it)."""

    def __init__(self, exchange: str, keys: tuple[str, ...]) -> None:
        self.exchange, self.keys, self.name = exchange, keys, unique("crm-test-q-")
        self.received: list[Message] = []
        asyncio.run(self._declare())

    async def _declare(self) -> None:
        async with await aio_pika.connect(AMQP) as conn:
            ch = await conn.channel()
            ex = await ch.declare_exchange(self.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
            q = await ch.declare_queue(self.name, durable=True)
            for key in self.keys:
                await q.bind(ex, key)

    def drain(self) -> list[Message]:
        """Everything queued so far, added to `received` (acknowledged: read once)."""

        async def go() -> None:
            async with await aio_pika.connect(AMQP) as conn:
                q = await (await conn.channel()).get_queue(self.name)
                while (m := await q.get(no_ack=True, fail=False)) is not None:
                    self.received.append(
                        Message(
                            m.body,
                            {k: _text(v) for k, v in (m.headers or {}).items()},
                            m.message_id,
                            m.routing_key,
                            m.content_type,
                            m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT,
                        )
                    )

        asyncio.run(go())
        return self.received

    def delete(self) -> None:
        async def go() -> None:
            async with await aio_pika.connect(AMQP) as conn:
                ch = await conn.channel()
                await ch.queue_delete(self.name)
                if self.exchange != "crm.events":
                    await ch.exchange_delete(self.exchange)

        asyncio.run(go())


def close_rabbit_connections(tag: str) -> int:
    """Close, from the broker's side, the connections whose client name contains `tag`."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    closed = 0
    for line in listed.splitlines():
        if tag in line:
            pid = line.split("\t", 1)[0]
            done = subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", pid, "test: connection killed"],
                capture_output=True,
                check=False,  # already closing (a connection of the previous kill): not ours
            )
            closed += done.returncode == 0
    return closed


def jetstream_messages(stream: str, subject: str) -> list[Message]:
    """Every message of `stream` on `subject`, read by an ephemeral ordered consumer."""

    async def go() -> list[Message]:
        nc = await nats.connect(NATS)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            found: list[Message] = []
            if info.state.messages == 0:
                return found
            sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
            try:
                while len(found) < info.state.messages:
                    try:
                        m = await sub.next_msg(timeout=2)
                    except nats.errors.TimeoutError:
                        break
                    found.append(
                        Message(m.data, dict(m.headers or {}), None, m.subject, None, True)
                    )
            finally:
                await sub.unsubscribe()
            return found
        finally:
            await nc.close()

    return asyncio.run(go())


def delete_stream(stream: str) -> None:
    async def go() -> None:
        nc = await nats.connect(NATS)
        try:
            await nc.jetstream().delete_stream(stream)
        except nats.js.errors.NotFoundError:
            pass
        finally:
            await nc.close()

    asyncio.run(go())
