"""`rabbitmq`: each notification published to a durable topic exchange, acknowledged on the
broker's publisher confirm (aio-pika).

Routing key = the notification's type, body = the webhook JSON body, `message_id` = its id,
persistent, `application/json`, and the Standard Webhooks headers as AMQP headers: a consumer
verifies a message exactly as a webhook receiver does, and dedupes repeats by `message_id`.
A nack, a message returned unroutable (no queue bound for its type) or a lost connection is a
retry; the connection is re-opened at the next batch (a
broker restart costs one batch's retry, nothing is lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from domain.destinations import kinds
from infra.settings import Secret, Target
from worker.connectors.base import Outcome, Outgoing, Sent, describe_error, sent_for

log = logging.getLogger("crm.connectors.rabbitmq")
DEFAULT_EXCHANGE = "crm.events"
CONNECT_TIMEOUT = 5.0
# What a lost broker looks like to aio-pika/aiormq: the batch is retried on a new connection.
LOST = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


class RabbitMQConnector:
    """One connection and one confirm-mode channel per broker URL and worker process."""

    kind: ClassVar[str] = "rabbitmq"

    def __init__(self) -> None:
        self._connections: dict[str, tuple[AbstractConnection, AbstractChannel]] = {}
        self._exchanges: dict[tuple[str, str], AbstractExchange] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def validate(
        cls, url: str | None, options: Mapping[str, object], credentials: Mapping[str, Secret]
    ) -> None:
        kinds.validate(cls.kind, url, options, credentials)

    async def send(self, target: Target, batch: Sequence[Outgoing]) -> list[Sent]:
        assert target.url is not None
        started = time.perf_counter()
        name = str(target.options.get("exchange") or DEFAULT_EXCHANGE)
        try:
            exchange = await self._exchange(target.url, name)
        except (*LOST, TimeoutError) as exc:
            await self._forget(target.url)
            error = f"connection error: {describe_error(exc)}"
            return [sent_for(o, Outcome.RETRY, started, error) for o in batch]

        async def one(o: Outgoing) -> Sent:
            message = aio_pika.Message(
                o.body,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(o.notification.id),
                content_type="application/json",
                type=o.notification.type,
                headers=dict(o.headers),
            )
            began = time.perf_counter()
            try:
                # mandatory: a message no queue is bound for comes back (retried, logged)
                # instead of being confirmed and dropped.
                confirm = await exchange.publish(message, routing_key=o.notification.type)
            except aiormq.exceptions.PublishError as exc:
                return sent_for(o, Outcome.RETRY, began, f"unroutable: {describe_error(exc)}")
            except aiormq.exceptions.DeliveryError as exc:
                return sent_for(o, Outcome.RETRY, began, f"nack: {describe_error(exc)}")
            except LOST as exc:
                return sent_for(o, Outcome.RETRY, began, f"connection lost: {describe_error(exc)}")
            if isinstance(confirm, aiormq.abc.DeliveredMessage):  # returned by the broker
                why = f"unroutable: no queue bound for {o.notification.type}"
                return sent_for(o, Outcome.RETRY, began, why)
            if not isinstance(confirm, aiormq.spec.Basic.Ack):
                return sent_for(o, Outcome.RETRY, began, f"not confirmed: {type(confirm).__name__}")
            return sent_for(o, Outcome.ACK, began)

        sent = await asyncio.gather(*(one(o) for o in batch))
        if any(s.outcome is not Outcome.ACK for s in sent):
            await self._forget(target.url)  # a fresh connection for the retries
        return list(sent)

    async def _exchange(self, url: str, name: str) -> AbstractExchange:
        async with self._lock:
            held = self._connections.get(url)
            if held is None or held[0].is_closed or held[1].is_closed:
                if held is not None:
                    await self._close(held)
                    self._exchanges = {k: v for k, v in self._exchanges.items() if k[0] != url}
                connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT)
                channel = await connection.channel(publisher_confirms=True)
                held = self._connections[url] = (connection, channel)
                log.info("connected to %s", kinds.mask_url(self.kind, url))
            exchange = self._exchanges.get((url, name))
            if exchange is None:
                # Declared if absent; an existing one of the same type and durability is kept.
                exchange = await held[1].declare_exchange(
                    name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                self._exchanges[(url, name)] = exchange
            return exchange

    async def _forget(self, url: str) -> None:
        async with self._lock:
            held = self._connections.pop(url, None)
            self._exchanges = {k: v for k, v in self._exchanges.items() if k[0] != url}
        if held is not None:
            await self._close(held)

    @staticmethod
    async def _close(held: tuple[AbstractConnection, AbstractChannel]) -> None:
        try:
            await asyncio.wait_for(held[0].close(), CONNECT_TIMEOUT)
        except Exception as exc:  # already gone: nothing to release
            log.debug("closing a lost connection: %s", exc)

    async def close(self) -> None:
        for url in list(self._connections):
            await self._forget(url)


CONNECTOR = RabbitMQConnector
