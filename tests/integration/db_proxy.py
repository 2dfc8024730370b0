"""A throwaway TCP forwarder in front of PostgreSQL that a test can cut and restore.

It stands for a database restart or a network loss without stopping the shared server that
other tests use: `cut()` drops every open connection at once (as a restart does) and, until
`restore()`, refuses new ones (`"refuse"`: accepted and closed at once, as a stopping server
does) or holds them without an answer (`"blackhole"`: a lost network, where only timeouts end
the wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Literal, TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")
Mode = Literal["refuse", "blackhole"]


class DatabaseProxy:
    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.connections = 0  # accepted since start, for tests of who connects when
        self._mode: Mode | None = None  # None: forwarding
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> DatabaseProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by the proxy's."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def cut(self, mode: Mode = "refuse") -> None:
        """Drop every connection now and refuse (or hold) new ones until `restore()`."""

        async def go() -> None:
            self._mode = mode
            self._drop_all()

        self._call(go())

    def restore(self) -> None:
        async def go() -> None:
            self._mode = None
            self._drop_all()  # connections held in blackhole mode never reached the server

        self._call(go())

    def stop(self) -> None:
        async def go() -> None:
            assert self._server is not None
            self._server.close()
            self._drop_all()

        self._call(go())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _drop_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()  # a reset, as when the server process dies
        self._open.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._mode == "refuse":
            writer.transport.abort()
            return
        self._open.add(writer)
        if self._mode == "blackhole":
            return  # held, unanswered, until restore() or stop() drops it
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._open.add(up_writer)
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._open.discard(writer)


@contextlib.contextmanager
def database_proxy(port: int = 5432) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(upstream_port=port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
