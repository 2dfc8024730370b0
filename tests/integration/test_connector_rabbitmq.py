"""The rabbitmq connector against the real broker: confirms, a connection lost mid-batch."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

from domain.outbox.delivery import Claimed
from infra.settings import Target
from tests.e2e.brokers import AMQP, RabbitQueue, close_rabbit_connections, unique
from worker.connectors import connector_class
from worker.connectors.base import Outcome, Outgoing, Sent
from worker.connectors.rabbitmq import RabbitMQConnector


def _batch(n: int) -> list[Outgoing]:
    out = []
    for _ in range(n):
        c = Claimed(uuid.uuid4(), "NEW_LEAD", "EVENTS", "HIGH", {}, datetime.now(UTC), 0, None)
        out.append(Outgoing(c, json.dumps(c.payload()).encode(), {"webhook-id": str(c.id)}))
    return out


def test_the_kind_registry_finds_the_rabbitmq_connector_and_tolerates_a_missing_kind():
    assert connector_class("rabbitmq") is RabbitMQConnector
    assert connector_class("no_such_kind") is None


def test_a_connection_lost_mid_stream_is_a_retry_then_the_connection_is_reopened():
    exchange, tag = unique("crm.test."), unique("crm-test-conn-")
    queue = RabbitQueue(exchange, ("#",))
    target = Target("EVENTS", f"{AMQP}?name={tag}", kind="rabbitmq", options={"exchange": exchange})
    first, second, third = _batch(5), _batch(5), _batch(5)

    async def go() -> tuple[list[Sent], list[Sent], list[Sent]]:
        c = RabbitMQConnector()
        try:
            a = await c.send(target, first)
            # Closed by the broker while this loop is blocked: the connector still holds it.
            assert close_rabbit_connections(tag) == 1
            b = await c.send(target, second)
            return a, b, await c.send(target, third)
        finally:
            await c.close()

    try:
        a, b, c = asyncio.run(go())
        assert {s.outcome for s in a} == {Outcome.ACK}
        assert {s.outcome for s in b} == {Outcome.RETRY}
        assert all(s.error and "connection" in s.error for s in b)
        assert {s.outcome for s in c} == {Outcome.ACK}  # re-opened
        got = {m.message_id for m in queue.drain()}
        assert {str(o.notification.id) for o in first + third} <= got
    finally:
        queue.delete()


def test_an_unroutable_message_is_retried_not_confirmed_and_dropped():
    exchange = unique("crm.test.")
    queue = RabbitQueue(exchange, ("NOTHING_OF_OURS",))
    target = Target("EVENTS", AMQP, kind="rabbitmq", options={"exchange": exchange})

    async def go() -> list[Sent]:
        c = RabbitMQConnector()
        try:
            return await c.send(target, _batch(2))
        finally:
            await c.close()

    try:
        sent = asyncio.run(go())
        assert {s.outcome for s in sent} == {Outcome.RETRY}
        assert all("unroutable" in (s.error or "") for s in sent), sent
    finally:
        queue.delete()
