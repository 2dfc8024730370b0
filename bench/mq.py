"""RabbitMQ drain: real `crm worker` processes publishing with publisher confirms, next to a
plain aio-pika publish loop with confirms to the same exchange, in one run.

On loopback (PostgreSQL, Redis, RabbitMQ 127.0.0.1:5672 guest/guest): its own database
(migrated, dropped at the end), a registry destination of kind `rabbitmq` on a unique
exchange with one durable queue bound to `#` (purged between runs, deleted at the end).

- drain: N notifications (default 10,000) inserted with one statement, `crm worker -c 2` and
  `crm beat` idle and ready; one dispatch task per worker process is kicked and the clock runs
  from insert-commit to the last `read_at` (every row confirmed by the broker and recorded);
- ceiling: one aio-pika connection and confirm-mode channel publishing the same signed bodies
  (signed before the clock starts), `--in-flight` publishes awaiting their confirms at a time;
- prints both rates and the ratio (target >= 60 %).

    uv run python bench/mq.py                 # 10,000 notifications
    uv run python bench/mq.py -n 2000         # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.drain import (  # noqa: E402
    INSERT,
    Bench,
    attempt_counts,
    create_database,
    drop_database,
    kick,
    reset,
    wait_drained,
)
from domain.destinations.directory import Sealed  # noqa: E402
from infra.secretbox import SecretBox  # noqa: E402
from worker.signing import secret_key, webhook_headers  # noqa: E402

AMQP = os.environ.get("CRM_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
KEY = "bench-secret-key-0123456789abcdef0123456789"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TARGET = "MQ"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def add_target(db_url: str, exchange: str) -> None:
    """The `rabbitmq` destination, sealed as the registry seals it."""
    box = SecretBox(KEY)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO crm_targets (id, name, kind, url, secret_current, options, credentials,"
            " enabled, created_at, updated_at) VALUES (%s, %s, 'rabbitmq', %s, %s, %s, %s, true,"
            " now(), now())",
            (
                uuid.uuid4(),
                TARGET,
                "amqp://***@127.0.0.1:5672/",
                box.seal(SECRET, TARGET),
                json.dumps({"exchange": exchange}),
                Sealed({}, AMQP).seal(box, TARGET),
            ),
        )


def insert_due(db_url: str, n: int) -> float:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(INSERT.replace("'BZION_HUB'", f"'{TARGET}'"), {"n": n}, prepare=False)
        conn.execute("ANALYZE crm_notifications")
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    assert row is not None
    return float(row[0])


def signed_messages(db_url: str) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """(id, type, body, headers) of every row, built as the dispatcher builds them."""
    import msgspec

    from infra.settings import Secret

    keys = [secret_key(Secret(SECRET))]
    now = int(time.time())
    out = []
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, type, target_system, priority, data, created_at FROM crm_notifications"
        ).fetchall()
    for nid, type_, target, priority, data, created_at in rows:
        body = msgspec.json.encode(
            {
                "id": str(nid),
                "type": type_,
                "targetSystem": target,
                "priority": priority,
                "data": data,
                "createdAt": created_at.isoformat().replace("+00:00", "Z"),
            }
        )
        out.append((str(nid), type_, body, webhook_headers(keys, str(nid), now, body)))
    return out


async def declare(exchange: str, queue: str) -> None:
    async with await aio_pika.connect(AMQP) as conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        q = await ch.declare_queue(queue, durable=True)
        await q.bind(ex, "#")


async def purge(queue: str) -> int:
    async with await aio_pika.connect(AMQP) as conn:
        q = await (await conn.channel()).declare_queue(queue, durable=True)
        count = q.declaration_result.message_count or 0
        await q.purge()
        return int(count)


async def cleanup(exchange: str, queue: str) -> None:
    async with await aio_pika.connect(AMQP) as conn:
        ch = await conn.channel()
        await ch.queue_delete(queue)
        await ch.exchange_delete(exchange)


async def ceiling(
    exchange_name: str, messages: list[tuple[str, str, bytes, dict[str, str]]], in_flight: int
) -> float:
    """Messages/s of a plain confirm-mode publish loop, `in_flight` confirms awaited at once."""
    async with await aio_pika.connect(AMQP) as conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.get_exchange(exchange_name)
        it = iter(messages)

        async def loop() -> None:
            for nid, type_, body, headers in it:
                await ex.publish(
                    aio_pika.Message(
                        body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=nid,
                        content_type="application/json",
                        type=type_,
                        headers=dict(headers),
                    ),
                    routing_key=type_,
                )

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(in_flight)))
        return len(messages) / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", type=int, default=10_000, help="notifications (default 10,000)")
    p.add_argument("--concurrency", type=int, default=2, help="crm worker -c (default 2)")
    p.add_argument("--in-flight", type=int, default=200, help="ceiling's confirms in flight")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = uuid.uuid4().hex[:8]
    exchange, queue = f"crm.bench.{run}", f"crm-bench-{run}"
    db_url = create_database()
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-mq-"))
    bench = Bench(db_url, tmp, a.concurrency, 0, {"CRM_SECRET_KEY": KEY})
    asyncio.run(declare(exchange, queue))
    print(
        f"mq: {a.n:,} notifications, crm worker -c {a.concurrency} + crm beat, RabbitMQ, "
        f"PostgreSQL and Redis on loopback, {os.cpu_count()} cores (defaults: CRM_BATCH_SIZE "
        f"200, CRM_MAX_IN_FLIGHT 64); ceiling: one aio-pika channel, {a.in_flight} in flight"
    )
    try:
        add_target(db_url, exchange)
        with bench.stack("http://127.0.0.1:9/") as (celery_queue, _):
            reset(db_url)
            started = insert_due(db_url, a.n)
            kick(celery_queue, a.concurrency)
            finished = wait_drained(db_url, timeout=max(120.0, a.n / 50))
            attempts, distinct = attempt_counts(db_url)
        drained = a.n / (finished - started)
        if distinct != a.n or attempts != a.n:
            log(f"note: {attempts} attempts for {distinct} of {a.n} notifications")
        got = asyncio.run(purge(queue))
        log(f"{got:,} messages were queued by the worker")
        messages = signed_messages(db_url)
        top = asyncio.run(ceiling(exchange, messages, a.in_flight))
        asyncio.run(purge(queue))
        ratio = drained / top
        verdict = "OK" if ratio >= 0.6 else "BELOW TARGET"
        print(f"  crm worker drain : {drained:8,.0f} notifications/s ({finished - started:.2f} s)")
        print(f"  aio-pika loop    : {top:8,.0f} messages/s (publisher confirms)")
        print(f"  ratio            : {ratio:8.0%}   target >= 60 %  {verdict}")
    finally:
        asyncio.run(cleanup(exchange, queue))
        drop_database(db_url)


if __name__ == "__main__":
    main()
