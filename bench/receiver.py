"""A loopback webhook receiver for the benchmarks: answers 200 at once to every POST.

aiohttp.web on uvloop. Run several copies on one port (`--reuse-port`, SO_REUSEPORT) so the
kernel spreads connections across processes and the receiver is not the bottleneck. With
`--record FILE`, it keeps `webhook-id` and arrival time (time.time()) of every request and
writes them, one `id<TAB>epoch` a line, to FILE when it receives SIGTERM.

    python bench/receiver.py --port 9000 [--reuse-port] [--record /tmp/arrivals.tsv]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

REPLY = b'{"ok":true}'


async def serve(port: int, reuse_port: bool, record: str | None) -> None:
    arrivals: list[tuple[str, float]] = []

    async def webhook(request: web.Request) -> web.Response:
        await request.read()
        if record is not None:
            arrivals.append((request.headers.get("webhook-id", ""), time.time()))
        return web.Response(body=REPLY, content_type="application/json")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{tail:.*}", webhook)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_port=reuse_port, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("receiver ready", flush=True)
    await stop.wait()
    await runner.cleanup()
    if record is not None:
        with open(record, "w") as f:
            f.writelines(f"{i}\t{t:.6f}\n" for i, t in arrivals)


class Receivers:
    """`processes` copies of this receiver on one loopback port, started as subprocesses."""

    def __init__(self, processes: int = 1, record: str | None = None) -> None:
        self.processes = processes
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.records = [f"{record}.{i}" for i in range(processes)] if record else []
        self._procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Receivers:
        for i in range(self.processes):
            args = [sys.executable, str(Path(__file__)), "--port", str(self.port)]
            if self.processes > 1:
                args.append("--reuse-port")
            if self.records:
                args += ["--record", self.records[i]]
            p = subprocess.Popen(args, stdout=subprocess.PIPE)
            self._procs.append(p)
            assert p.stdout is not None
            if p.stdout.readline().strip() != b"receiver ready":
                raise RuntimeError("receiver did not start")
        return self

    def __exit__(self, *_: object) -> None:
        for p in self._procs:
            p.send_signal(signal.SIGTERM)
        for p in self._procs:
            p.wait(timeout=30)

    def arrivals(self) -> dict[str, float]:
        """webhook-id -> first arrival (epoch seconds), after the receivers stopped."""
        first: dict[str, float] = {}
        for path in self.records:
            for line in Path(path).read_text().splitlines():
                i, t = line.split("\t")
                first[i] = min(first.get(i, float(t)), float(t))
            Path(path).unlink()
        return first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--reuse-port", action="store_true")
    p.add_argument("--record", default=None)
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(a.port, a.reuse_port, a.record))


if __name__ == "__main__":
    main()
