"""How uvicorn serves the app: the request head (request line and headers) is capped.

Without a cap a client can send megabytes of headers that uvicorn's httptools parser keeps
in memory before the app sees a byte. h11 has its own cap (h11_max_incomplete_event_size);
httptools has none, so `CappedHttpToolsProtocol` counts the head and answers 431.
A reverse proxy in front should cap earlier (README: "Input policy").
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024  # request line + headers; nginx's default buffers hold 4 x 8 KiB


class HeadTooLarge(Exception):
    """Raised in a parser callback: the request head went past MAX_HEAD_BYTES."""


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on the request head, answered with a 431."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = self._pending_head = 0
        self._head_open = True
        self._too_large = False

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._too_large = True
            raise HeadTooLarge

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._head_open = 0, True

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A head still open after this chunk is all head so far: bound what the parser
        # buffers before a single header is complete (one 10 MB header line).
        if self._head_open and not self._too_large and not self.transport.is_closing():
            self._pending_head += len(data)
            if self._pending_head > MAX_HEAD_BYTES:
                self._too_large = True
                self.send_400_response("")
        else:
            self._pending_head = 0

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        body = b"request header fields too large"
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()


def server_options() -> dict[str, Any]:
    """uvicorn.run keyword arguments that cap the request head with either parser."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return {"http": "h11", "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
    return {"http": CappedHttpToolsProtocol, "h11_max_incomplete_event_size": MAX_HEAD_BYTES}
