"""httpx.AsyncClient vs aiohttp.ClientSession vs worker/http1.py posting webhooks to one receiver.

Justifies the delivery transport (worker/transport.py). In one run:

1. starts one receiver process (bench/receiver.py: aiohttp.web on uvloop, answers 200 at once);
2. for each client (httpx, aiohttp, the worker's http1.Client) and each concurrency (8, 64 in flight), posts the same
   signed notification body from this process for `--seconds` after a short warm-up,
   one pooled client, `in_flight` coroutines each awaiting its reply before the next post;
3. measures the ceiling of the same work: wrk (C, 1 thread, 64 connections) posting the same
   body with the same headers to the same receiver, when wrk is on PATH;
4. prints requests/s per client and concurrency, and the ratio to the ceiling.

    uv run python bench/http_clients.py            # 5 s per measurement
    uv run python bench/http_clients.py --quick    # 2 s
    uv run python bench/http_clients.py --uvloop   # clients on uvloop instead of asyncio's loop
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.receiver import Receivers  # noqa: E402
from infra.egress import GuardedResolver, parse_allow  # noqa: E402
from worker.http1 import Client  # noqa: E402
from worker.signing import webhook_headers  # noqa: E402

SECRET_KEY = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


def sample_request() -> tuple[bytes, dict[str, str]]:
    """One notification body as the dispatcher sends it, with its Standard Webhooks headers."""
    nid = str(uuid.uuid4())
    body = msgspec.json.encode(
        {
            "id": nid,
            "type": "NEW_FORM_SUBMISSION",
            "targetSystem": "BZION_HUB",
            "priority": "HIGH",
            "data": {
                "formSubmissionId": str(uuid.uuid4()),
                "leadId": str(uuid.uuid4()),
                "formType": "quote_request",
                "email": "buyer@company.com",
                "name": "John Smith",
                "companyName": "Company Ltd",
                "leadScore": 80,
            },
            "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    )
    return body, webhook_headers([SECRET_KEY], nid, int(time.time()), body)


Post = Callable[[], Awaitable[int]]


async def drive(post: Post, in_flight: int, seconds: float, warmup: float) -> float:
    """Requests per second of `in_flight` loops calling `post` for `seconds` after warm-up."""
    done = 0
    counting = False
    stop = False

    async def loop() -> None:
        nonlocal done
        while not stop:
            status = await post()
            if status != 200:
                raise RuntimeError(f"receiver answered {status}")
            if counting:
                done += 1

    tasks = [asyncio.create_task(loop()) for _ in range(in_flight)]
    await asyncio.sleep(warmup)
    counting = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    counting = False
    elapsed = time.perf_counter() - started
    stop = True
    await asyncio.gather(*tasks)
    return done / elapsed


async def with_httpx(url: str, in_flight: int, seconds: float, warmup: float) -> float:
    body, headers = sample_request()
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:

        async def post() -> int:
            r = await client.post(url, content=body, headers=headers)
            return r.status_code

        return await drive(post, in_flight, seconds, warmup)


async def with_aiohttp(url: str, in_flight: int, seconds: float, warmup: float) -> float:
    body, headers = sample_request()
    connector = aiohttp.TCPConnector(limit=in_flight, limit_per_host=in_flight)
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def post() -> int:
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                return r.status

        return await drive(post, in_flight, seconds, warmup)


async def with_http1(url: str, in_flight: int, seconds: float, warmup: float) -> float:
    """The worker's own client (worker/http1.py), through the egress-guarding resolver."""
    body, headers = sample_request()
    client = Client(GuardedResolver(parse_allow("127.0.0.1/32")), limit_per_origin=in_flight)
    try:

        async def post() -> int:
            return (await client.post(url, body, headers, 10.0)).status

        return await drive(post, in_flight, seconds, warmup)
    finally:
        await client.close()


def with_wrk(url: str, connections: int, seconds: float) -> float | None:
    """The ceiling: wrk posting the same body and headers (None when wrk is missing)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    body, headers = sample_request()
    lua = "wrk.method = 'POST'\n" + f"wrk.body = {_lua_string(body.decode())}\n"
    lua += "".join(
        f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}\n" for k, v in headers.items()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        out = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(m.group(1))


def _lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    p.add_argument("--quick", action="store_true", help="2 s per measurement")
    p.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    a = p.parse_args()
    seconds = 2.0 if a.quick else a.seconds
    warmup = 0.5
    if a.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    with Receivers(processes=1) as receiver:
        ceiling = with_wrk(receiver.url, 64, seconds)
        rows: list[tuple[str, int, float]] = []
        for name, run in (
            ("httpx.AsyncClient", with_httpx),
            ("aiohttp.ClientSession", with_aiohttp),
            ("worker/http1.Client", with_http1),
        ):
            for in_flight in (8, 64):
                rate = asyncio.run(run(receiver.url, in_flight, seconds, warmup))
                rows.append((name, in_flight, rate))

    loop = "uvloop" if a.uvloop else "asyncio (default loop)"
    print(f"\nhttp_clients: one receiver process (aiohttp.web on uvloop) on {receiver.url}")
    print(
        f"settings: {seconds:g} s per measurement after {warmup:g} s warm-up, body "
        f"{len(sample_request()[0])} bytes, signed (3 webhook-* headers), client loop: {loop}, "
        f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}, {os.cpu_count()} cores"
    )
    if ceiling is not None:
        print(f"ceiling: wrk -t1 -c64, same body and headers: {ceiling:,.0f} requests/s")
    best = max(r for _, _, r in rows)
    print(f"{'client':<24}{'in flight':>10}{'requests/s':>14}{'vs ceiling':>12}{'vs best':>10}")
    for name, in_flight, rate in rows:
        vs_ceiling = f"{rate / ceiling:.1%}" if ceiling else "n/a"
        print(f"{name:<24}{in_flight:>10}{rate:>14,.0f}{vs_ceiling:>12}{rate / best:>10.1%}")


if __name__ == "__main__":
    main()
