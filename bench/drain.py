"""Outbox drain: real `crm worker` processes delivering to a loopback receiver, next to a ceiling.

In one run, on loopback (PostgreSQL 127.0.0.1:5432 trust auth, Redis 127.0.0.1:6379):

- creates its own database `crm_bench_drain_<random>`, migrates it (`infra.migrate.upgrade`),
  and drops it at the end; the Celery queue is unique to the run;
- the receiver is bench/receiver.py: aiohttp.web on uvloop, `--receivers` processes sharing one
  port (SO_REUSEPORT), answering 200 at once;
- (a) drain: for 10,000 and 100,000 notifications inserted with one statement (generate_series),
  with `crm worker -c N` and `crm beat` already running and idle, kicks one dispatch task per
  worker process and times insert-commit -> last `read_at`. The ceiling: the fastest plain async
  client loop (aiohttp on uvloop; the better of one process x 64 in flight and two processes
  x 32, both printed) posting the same signed bodies
  (signed before the clock starts) to the same receiver, once the worker has stopped. Prints
  notifications/s, the ceiling and the ratio (target >= 70 %, issue 14);
- (b) latency: `crm api` plus the worker and beat; `POST /api/forms/submit` at a steady
  `--rate` per second (open loop) for `--seconds`; the receiver records each webhook's arrival;
  prints p50/p99 of arrival - created_at and of arrival - API answer (target, issue 14:
  p50 < 10 ms, p99 < 50 ms);
- (c) backlog: the drain rate with 1,000 notifications due (median of 3) vs 100,000
  (target: within 20 %);
- (s) start-up: 1,000 notifications due and no worker; starts `crm worker` (no beat, no API,
  so only its own start-up dispatch moves them) and times process start -> first arrival at
  the receiver, median of 3 (target < 1.5 s). The floor: the same Python importing the
  worker's modules (`import worker.tasks`) and exiting, the part of a start no dispatch design
  can save;
- (g) guardrails (`--guardrails` or `--only g`): the drain of 10,000 (100,000 without
  `--quick`) with the target's rate limit and in-flight cap set high (a Redis token bucket
  consulted before each claim) next to the same drain without them, alternating three times
  in one run (target: within 10 %). Both run the breaker/pause checks and the egress resolver.

    uv run python bench/drain.py                 # a, b, c, s
    uv run python bench/drain.py --quick         # 2,000/10,000 rows, 5 s of latency
    uv run python bench/drain.py --only a        # one part
    uv run python bench/drain.py --only s        # worker start-up with a backlog
    uv run python bench/drain.py --quick --only g  # guardrails on vs off
    uv run python bench/drain.py --only a --fillfactor 100  # without room for HOT claims
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import psycopg
import redis
from celery import Celery

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.receiver import Receivers, free_port  # noqa: E402
from domain.outbox.rows import DISPATCH_TASK  # noqa: E402
from infra.migrate import upgrade  # noqa: E402
from worker.signing import secret_key, webhook_headers  # noqa: E402

ADMIN_URL = os.environ.get("CRM_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BROKER_URL = os.environ.get("CRM_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CEILING_IN_FLIGHT = 64

INSERT = """
INSERT INTO crm_notifications
    (id, type, target_system, priority, data, read, created_at, status, attempts, next_attempt_at)
SELECT gen_random_uuid(), 'NEW_FORM_SUBMISSION', 'BZION_HUB',
       (ARRAY['HIGH', 'NORMAL', 'LOW'])[1 + g %% 3],
       jsonb_build_object(
           'formSubmissionId', gen_random_uuid(), 'leadId', gen_random_uuid(),
           'formType', 'quote_request', 'email', 'buyer' || g || '@company.com',
           'name', 'John Smith', 'companyName', 'Company Ltd', 'leadScore', 80),
       false, now() - (%(n)s - g) * interval '1 microsecond', 'PENDING', 0, now()
FROM generate_series(1, %(n)s) AS g
"""


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


class Crm:
    """A `crm` subprocess in its own process group, logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.popen = subprocess.Popen(
            [sys.executable, "-c", "from crm_cli import main; main()", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, marker: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.log_path.read_text(errors="replace"):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.log_path.name} did not start:\n{tail}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()


@dataclass
class Bench:
    db_url: str
    tmp: Path
    concurrency: int
    receivers: int
    extra_env: dict[str, str]

    def env(self, target_url: str, queue: str, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": BROKER_URL,
            "CRM_CELERY_QUEUE": queue,
            "CRM_TARGET_BZION_HUB_URL": target_url,
            "CRM_TARGET_BZION_HUB_SECRET": SECRET,
            "PYTHONUNBUFFERED": "1",
            "CRM_RATE_LIMIT": "off",  # (b) is one client on loopback, not abuse
            "CRM_EGRESS_ALLOW": "127.0.0.1/32",  # the receiver is on loopback
        }
        env.update(self.extra_env)
        env.update(extra)
        return env

    @contextmanager
    def stack(
        self, target_url: str, api: bool = False, **extra: str
    ) -> Iterator[tuple[str, int | None]]:
        """`crm worker` + `crm beat` (+ `crm api`) on a fresh queue; yields (queue, api port)."""
        queue = f"crm-bench-{uuid.uuid4().hex[:8]}"
        env = self.env(target_url, queue, **extra)
        procs: list[Crm] = []
        try:
            w = Crm(["worker", "-c", str(self.concurrency)], env, self.tmp / f"{queue}-worker.log")
            procs.append(w)
            b = Crm(
                ["beat", "--schedule", str(self.tmp / f"{queue}-beat")],
                env,
                self.tmp / f"{queue}-beat.log",
            )
            procs.append(b)
            port = None
            if api:
                port = free_port()
                a = Crm(["api", "--port", str(port)], env, self.tmp / f"{queue}-api.log")
                procs.append(a)
                a.wait_ready("Application startup complete")
            w.wait_ready("ready.")
            b.wait_ready("beat: Starting")
            time.sleep(1.0)  # let the first sweeps find nothing and the pools warm up
            yield queue, port
        finally:
            for p in procs:
                p.stop()
            import redis

            redis.Redis.from_url(BROKER_URL).delete(queue)


# --------------------------------------------------------------------------- database


def create_database(fillfactor: int | None = None) -> str:
    name = f"crm_bench_drain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    if fillfactor is not None:  # an experiment (--fillfactor), not what the migrations make
        with psycopg.connect(url, autocommit=True) as conn:
            # On PostgreSQL the table is partitioned (migration 0013): a storage parameter is
            # set on each partition that exists (the bench's rows all land in this week's).
            leaves = conn.execute(
                "SELECT relid::regclass::text FROM pg_partition_tree('crm_notifications') "
                "WHERE isleaf"
            ).fetchall()
            for (leaf,) in leaves or [("crm_notifications",)]:
                conn.execute(f"ALTER TABLE {leaf} SET (fillfactor = {int(fillfactor)})")
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reset(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE crm_notification_attempts, crm_notifications CASCADE")


def insert_due(db_url: str, n: int) -> float:
    """Insert n due notifications in one statement, then ANALYZE (as autovacuum soon would).

    Returns the time they were all committed and analyzed (epoch seconds).
    """
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(INSERT, {"n": n}, prepare=False)
        conn.execute("ANALYZE crm_notifications")
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    assert row is not None
    return float(row[0])


def wait_drained(db_url: str, timeout: float) -> float:
    """Poll (through the unread partial index) until no row is unread; the last read_at."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while conn.execute(
            "SELECT EXISTS (SELECT 1 FROM crm_notifications WHERE read = false)"
        ).fetchone() == (True,):
            if time.monotonic() > deadline:
                raise RuntimeError(f"notifications still unread after {timeout}s")
            time.sleep(0.2)
        row = conn.execute("SELECT extract(epoch FROM max(read_at)) FROM crm_notifications")
        return float(row.fetchone()[0])  # type: ignore[index]


def attempt_counts(db_url: str) -> tuple[int, int]:
    """(attempts, distinct notifications attempted)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT notification_id) FROM crm_notification_attempts"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


_kicker: Celery | None = None


def kicker() -> Celery:
    """One Celery client for the run, its broker connection made before any clock starts (a
    cold one cost about 90 ms, 8 % of a 10,000-row drain; the API publishes on a warm one)."""
    global _kicker
    if _kicker is None:
        _kicker = Celery("crm-bench", broker=BROKER_URL)
        warm = f"crm-bench-warm-{uuid.uuid4().hex[:8]}"  # a queue nobody consumes, then gone
        _kicker.send_task(DISPATCH_TASK, queue=warm, expires=1)
        redis.Redis.from_url(BROKER_URL).delete(warm)
    return _kicker


def kick(queue: str, times: int) -> None:
    celery = kicker()
    for _ in range(times):
        celery.send_task(DISPATCH_TASK, queue=queue, expires=30)


# --------------------------------------------------------------------------- (a) and (c)


@dataclass
class Drain:
    n: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def drain_once(bench: Bench, queue: str, n: int) -> Drain:
    reset(bench.db_url)
    kicker()  # connected before the clock starts
    started = insert_due(bench.db_url, n)
    kick(queue, bench.concurrency)
    finished = wait_drained(bench.db_url, timeout=max(60.0, n / 200))
    attempts, distinct = attempt_counts(bench.db_url)
    if distinct != n:
        raise RuntimeError(f"{distinct} of {n} notifications attempted")
    if attempts != n:
        log(f"note: {attempts} attempts for {n} notifications (redeliveries)")
    return Drain(n, finished - started)


def signed_requests(db_url: str) -> list[tuple[bytes, dict[str, str]]]:
    """The bodies and headers the dispatcher sends for every row, built as it builds them."""
    keys = [secret_key(s) for s in _secrets()]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, type, target_system, priority, data, created_at FROM crm_notifications"
        ).fetchall()
    out = []
    now = int(time.time())
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
        out.append((body, webhook_headers(keys, str(nid), now, body)))
    return out


def _secrets() -> tuple[Any, ...]:
    from infra.settings import parse_targets

    env = {"CRM_TARGET_BZION_HUB_URL": "http://x", "CRM_TARGET_BZION_HUB_SECRET": SECRET}
    return parse_targets(env)[0].secrets


def ceiling(url: str, requests: list[tuple[bytes, dict[str, str]]]) -> tuple[float, str]:
    """Requests/s of the best plain aiohttp loop on uvloop posting every request once: one
    process x 64 in flight, or two processes x 32 (each half the requests), as issue 14 says."""
    one = _aiohttp_loop(url, requests, CEILING_IN_FLIGHT)
    two = _aiohttp_loop_processes(url, requests, 2, CEILING_IN_FLIGHT // 2)
    label = f"1 x {CEILING_IN_FLIGHT}: {one:,.0f}/s, 2 x {CEILING_IN_FLIGHT // 2}: {two:,.0f}/s"
    return max(one, two), label


def _aiohttp_loop(url: str, requests: list[tuple[bytes, dict[str, str]]], in_flight: int) -> float:
    import uvloop

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=in_flight, limit_per_host=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:
            it = iter(requests)

            async def loop() -> None:
                for body, headers in it:
                    async with session.post(url, data=body, headers=headers) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"receiver answered {r.status}")

            started = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(in_flight)))
            return len(requests) / (time.perf_counter() - started)

    return uvloop.run(run())


def _aiohttp_loop_processes(
    url: str, requests: list[tuple[bytes, dict[str, str]]], processes: int, in_flight: int
) -> float:
    """`processes` forked loops, each posting its share, timed from a common start to the
    last one's end (forking and exiting are outside the clock)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    start, done = ctx.Barrier(processes + 1), ctx.Queue()

    def child(share: list[tuple[bytes, dict[str, str]]]) -> None:
        start.wait()
        _aiohttp_loop(url, share, in_flight)
        done.put(time.perf_counter())

    procs = [ctx.Process(target=child, args=(requests[i::processes],)) for i in range(processes)]
    for p in procs:
        p.start()
    start.wait()
    started = time.perf_counter()
    ended = max(done.get(timeout=300) for _ in procs)
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a ceiling process exited with {p.exitcode}")
    return len(requests) / (ended - started)


def part_a(bench: Bench, sizes: list[int]) -> dict[int, Drain]:
    results: dict[int, Drain] = {}
    with Receivers(bench.receivers) as receiver:
        ceilings: dict[int, float] = {}
        variants: dict[int, str] = {}
        bodies: dict[int, list[tuple[bytes, dict[str, str]]]] = {}
        with bench.stack(receiver.url) as (queue, _):
            for n in sizes:
                log(f"(a) draining {n:,} notifications")
                results[n] = drain_once(bench, queue, n)
                bodies[n] = signed_requests(bench.db_url)
        for n in sizes:  # with no worker running (the stack has stopped)
            log(f"(a) ceiling on the same {len(bodies[n]):,} signed bodies")
            ceilings[n], variants[n] = ceiling(receiver.url, bodies[n])
    print("\n(a) drain of pre-inserted notifications: insert commit -> last read_at")
    print(f"{'notifications':>14}{'seconds':>10}{'crm/s':>10}{'ceiling/s':>12}{'ratio':>9}")
    for n in sizes:
        d = results[n]
        print(
            f"{n:>14,}{d.seconds:>10.2f}{d.rate:>10,.0f}{ceilings[n]:>12,.0f}"
            f"{d.rate / ceilings[n]:>9.1%}  {_verdict(d.rate / ceilings[n] >= 0.7)} >= 70%"
        )
    for n in sizes:
        print(f"  ceiling for {n:,}, the best of: {variants[n]}")
    return results


def part_c(bench: Bench, small: int, big: int, big_result: Drain | None) -> None:
    with Receivers(bench.receivers) as receiver, bench.stack(receiver.url) as (queue, _):
        smalls = []
        for i in range(3):
            log(f"(c) draining {small:,} notifications ({i + 1}/3)")
            smalls.append(drain_once(bench, queue, small))
        if big_result is None:
            log(f"(c) draining {big:,} notifications")
            big_result = drain_once(bench, queue, big)
    small_rate = statistics.median(d.rate for d in smalls)
    runs = ", ".join(f"{d.rate:,.0f}" for d in smalls)
    change = big_result.rate / small_rate - 1
    print("\n(c) drain rate vs backlog")
    print(f"  backlog {small:>8,}: {small_rate:>8,.0f}/s (median of 3: {runs})")
    print(f"  backlog {big:>8,}: {big_result.rate:>8,.0f}/s")
    print(
        f"  ratio {big_result.rate / small_rate:.2f} ({change:+.1%}); {_verdict(abs(change) <= 0.2)}"
    )


# --------------------------------------------------------------------------- (g)

GUARDRAILS_HIGH = {
    "CRM_TARGET_BZION_HUB_RATE_LIMIT": "1000000",  # a token bucket in Redis, never empty
    "CRM_TARGET_BZION_HUB_MAX_IN_FLIGHT": "64",  # the target's own in-flight cap
}


def part_g(bench: Bench, n: int, rounds: int = 3) -> None:
    """The drain with the target's limits set high next to the same drain without them,
    alternating (off, on) `rounds` times on one receiver; medians compared."""
    runs: dict[str, list[Drain]] = {"off": [], "on": []}
    with Receivers(bench.receivers) as receiver:
        for i in range(rounds):
            for mode, extra in (("off", {}), ("on", GUARDRAILS_HIGH)):
                with bench.stack(receiver.url, **extra) as (queue, _):
                    log(f"(g) draining {n:,} notifications, limits {mode} ({i + 1}/{rounds})")
                    runs[mode].append(drain_once(bench, queue, n))
    off = statistics.median(d.rate for d in runs["off"])
    on = statistics.median(d.rate for d in runs["on"])
    print(f"\n(g) guardrails: {n:,} notifications, median of {rounds} alternating runs")
    for mode, label, rate in (("off", "without limits", off), ("on", "limits set high", on)):
        each = ", ".join(f"{d.rate:,.0f}" for d in runs[mode])
        print(f"  {label:<16} {rate:>8,.0f}/s ({each})")
    print(
        f"  ratio {on / off:.2f} ({on / off - 1:+.1%}); {_verdict(on / off >= 0.9)} within 10 %"
        f"  (limits: {GUARDRAILS_HIGH})"
    )


# --------------------------------------------------------------------------- (b)


def part_b(bench: Bench, rate: float, seconds: float, warmup: float) -> None:
    record = str(bench.tmp / "arrivals")
    receiver = Receivers(bench.receivers, record=record)
    with receiver, bench.stack(receiver.url, api=True) as (_, port):
        assert port is not None
        log(f"(b) {rate:g} submissions/s for {warmup:g} s warm-up + {seconds:g} s")
        response_ms: list[float] = []
        answered = asyncio.run(submit_steadily(port, rate, seconds, warmup, response_ms))
        wait_drained(bench.db_url, timeout=60)
    arrivals = receiver.arrivals()  # written by the receivers as they stop
    with psycopg.connect(bench.db_url) as conn:
        created = {
            str(i): float(t)
            for i, t in conn.execute(
                "SELECT id, extract(epoch FROM created_at) FROM crm_notifications"
            ).fetchall()
        }
    from_created = sorted((arrivals[i] - created[i]) * 1000 for i in answered)
    from_answer = sorted((arrivals[i] - answered[i]) * 1000 for i in answered)
    p50, p99 = _pct(from_created, 50), _pct(from_created, 99)
    print(f"\n(b) commit-to-delivery latency at {rate:g} submissions/s through `crm api`")
    print(f"  {len(from_created):,} notifications measured ({warmup:g} s warm-up not counted)")
    print(
        f"  arrival - created_at:   p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  max "
        f"{from_created[-1]:6.1f} ms   {_verdict(p50 < 10 and p99 < 50)} p50 < 10, p99 < 50"
    )
    response_ms.sort()
    print(
        f"  API response time:      p50 {_pct(response_ms, 50):6.1f} ms  p99 "
        f"{_pct(response_ms, 99):6.1f} ms  (sent -> answered, for context)"
    )
    print(
        f"  arrival - API answered: p50 {_pct(from_answer, 50):6.1f} ms  p99 "
        f"{_pct(from_answer, 99):6.1f} ms  max {from_answer[-1]:6.1f} ms"
    )


async def submit_steadily(
    port: int, rate: float, seconds: float, warmup: float, response_ms: list[float]
) -> dict[str, float]:
    """Open loop: request i is sent at start + i/rate; notification id -> epoch answered."""
    url = f"http://127.0.0.1:{port}/api/forms/submit"
    answered: dict[str, float] = {}
    total = int(rate * (warmup + seconds))
    counted_from = int(rate * warmup)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:

        async def submit(i: int) -> None:
            body = {"formType": "contact_us", "email": f"bench{i}@company.com", "name": "Bench"}
            sent = time.time()
            async with session.post(url, json=body) as r:
                reply = await r.json()
                at = time.time()
                if r.status != 201:
                    raise RuntimeError(f"API answered {r.status}: {reply}")
            if i >= counted_from:
                response_ms.append((at - sent) * 1000)
                for nid in reply["notificationIds"]:
                    answered[nid] = at

        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit(i)))
        await asyncio.gather(*tasks)
    return answered


def _pct(sorted_values: list[float], p: float) -> float:
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


# --------------------------------------------------------------------------- (s)


def part_s(bench: Bench, rows: int = 1_000, runs: int = 3) -> None:
    record = str(bench.tmp / "startup")
    firsts: list[float] = []
    readies: list[float] = []
    floors: list[float] = []
    for i in range(runs):
        floors.append(_import_seconds())
        reset(bench.db_url)
        insert_due(bench.db_url, rows)
        queue = f"crm-bench-{uuid.uuid4().hex[:8]}"
        with Receivers(bench.receivers, record=f"{record}{i}") as receiver:
            env = bench.env(receiver.url, queue, CRM_SWEEP_SECONDS="3600")
            log(f"(s) starting a worker with {rows:,} notifications due ({i + 1}/{runs})")
            started = time.time()
            w = Crm(["worker", "-c", str(bench.concurrency)], env, bench.tmp / f"{queue}.log")
            try:
                w.wait_ready("ready.")
                readies.append(time.time() - started)
                wait_drained(bench.db_url, timeout=60)
            finally:
                w.stop()
        firsts.append(min(receiver.arrivals().values()) - started)
    first, floor = statistics.median(firsts), statistics.median(floors)
    each = ", ".join(f"{f:.2f}" for f in firsts)
    print(f"\n(s) worker start-up with {rows:,} notifications due (no beat, no commit)")
    print(f"  process start -> first arrival: {first:.2f} s (median of {runs}: {each})")
    print(f"  process start -> Celery 'ready.': {statistics.median(readies):.2f} s")
    print(
        f"  floor, `python -c 'import worker.tasks'`: {floor:.2f} s; ratio {first / floor:.2f}; "
        f"{_verdict(first < 1.5)} < 1.5 s"
    )


def _import_seconds() -> float:
    started = time.time()
    subprocess.run([sys.executable, "-c", "import worker.tasks"], cwd=ROOT, check=True)
    return time.time() - started


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2,000/10,000 rows, 5 s of latency")
    p.add_argument(
        "--only", choices=["a", "b", "c", "g", "s"], action="append", help="run only this part"
    )
    p.add_argument(
        "--guardrails",
        action="store_true",
        help="(g) also: the drain with per-target limits set high vs without, same run",
    )
    p.add_argument("--concurrency", type=int, default=2, help="crm worker -c (default 2)")
    p.add_argument("--receivers", type=int, default=2, help="receiver processes (default 2)")
    p.add_argument("--rate", type=float, default=200.0, help="(b) submissions/s (default 200)")
    p.add_argument("--seconds", type=float, default=20.0, help="(b) measured seconds (default 20)")
    p.add_argument(
        "--fillfactor",
        type=int,
        help="ALTER each crm_notifications partition SET (fillfactor = N) first: room on each "
        "page for the claim's HOT update (migration 0014 sets 75; 100 measures without)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for crm processes, e.g. CRM_BATCH_SIZE=500",
    )
    a = p.parse_args()
    parts = set(a.only or ["a", "b", "c", "s"]) | ({"g"} if a.guardrails else set())
    sizes = [2_000, 10_000] if a.quick else [10_000, 100_000]
    small = 1_000
    seconds = 5.0 if a.quick else a.seconds
    extra = dict(kv.split("=", 1) for kv in a.env)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the stack, drop the database
    db_url = create_database(a.fillfactor)
    tmp = Path(tempfile.mkdtemp(prefix="crm-bench-drain-"))
    bench = Bench(db_url, tmp, a.concurrency, a.receivers, extra)
    print(
        f"drain: crm worker -c {a.concurrency} + crm beat, receiver: bench/receiver.py x "
        f"{a.receivers} processes (aiohttp.web, uvloop, SO_REUSEPORT), PostgreSQL and Redis "
        f"on loopback, {os.cpu_count()} cores; settings: {extra or 'defaults'} "
        f"(CRM_BATCH_SIZE 384, CRM_MAX_IN_FLIGHT 64, CRM_SWEEP_SECONDS 1 unless set; "
        f"CRM_RATE_LIMIT off){f'; crm_notifications fillfactor {a.fillfactor}' if a.fillfactor else ''}"
    )
    try:
        drained: dict[int, Drain] = {}
        if "a" in parts:
            drained = part_a(bench, sizes)
        if "c" in parts:
            part_c(bench, small, sizes[-1], drained.get(sizes[-1]))
        if "b" in parts:
            part_b(bench, a.rate, seconds, warmup=2.0)
        if "s" in parts:
            part_s(bench)
        if "g" in parts:
            part_g(bench, sizes[-1])
    except Exception:
        log(f"logs kept in {tmp}")
        raise
    finally:
        drop_database(db_url)


if __name__ == "__main__":
    main()
