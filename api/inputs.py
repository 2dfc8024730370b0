"""The input policy of the edge: what any request must satisfy before a handler sees it.

PostgreSQL refuses NUL in text, Python's stack refuses unbounded nesting, and a byte that is
not UTF-8 has no string to become: each used to surface as a 500 from deep inside a handler.
They are checked here once, for every route, and answered as a 400 naming the field:

- `PolicedRequest.json()` (the app's request class: every JSON body goes through it) refuses
  bodies nested deeper than `MAX_JSON_DEPTH` levels, bytes that are not UTF-8, and NUL in any
  string or key, before the body is converted to the handler's types;
- `check_text_inputs` (the app's before_request hook) refuses NUL in the path, in any query
  parameter and in any field of an url-encoded form.

Everything else (lengths, patterns, enums, numbers in range) is the handler's types' job
(msgspec), answered through the same error table (api/errors.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException

# Levels of arrays/objects a JSON body may nest: the deepest request schema needs 3
# (`lines[0].sku`); `metadata` (level 2) may hold 30 more levels of its own.
MAX_JSON_DEPTH = 32
NUL = "\x00"
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_OPEN = frozenset(b"[{")


class InputRejected(ValidationException):
    """A 400 naming the field (JSON path in the request's own names) and what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", extra=[{"field": field, "message": message}])


def too_deep(body: bytes) -> str | None:
    """The top-level member that nests deeper than MAX_JSON_DEPTH, or "body"; None if none.

    A scan of the raw bytes, so a hostile body never reaches a recursive decoder; it runs
    only when the body holds more brackets than the limit (never for an ordinary form).
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return None
    depth, top_is_object, last_string, member = 0, False, b"", b""
    for match in _JSON_TOKENS.finditer(body):
        token = match.group()
        if token[0] == 0x22:  # a string: at level 1 of an object, the next member's key
            if depth == 1:
                last_string = token
        elif token[0] in _OPEN:
            depth += 1
            if depth == 1:
                top_is_object = token == b"{"
            elif depth == 2:
                member = last_string if top_is_object else b""
            if depth > MAX_JSON_DEPTH:
                return _key_name(member)
        else:
            depth -= 1
    return None


def _key_name(token: bytes) -> str:
    try:
        return (msgspec.json.decode(token, type=str) or "body") if token else "body"
    except (msgspec.DecodeError, UnicodeDecodeError):
        return "body"


def first_string(value: Any, bad: Callable[[str], bool]) -> str | None:
    """The JSON path (`metadata.utm`, `lines[0].sku`) of the first string or key that is bad.

    Iterative, so it never recurses however deep the value (the depth is checked apart).
    A bad key is reported as the object holding it.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if bad(item):
                return path or "body"
        elif isinstance(item, dict):
            if any(bad(k) for k in item if isinstance(k, str)):
                return path or "body"
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


def _has_nul(text: str) -> bool:
    return NUL in text


def _not_utf8_field(body: bytes) -> str:
    """Where the undecodable bytes sit: decode with U+FFFD in their place and look for it."""
    try:
        value = msgspec.json.decode(body.decode("utf-8", "replace"))
    except (msgspec.DecodeError, RecursionError):
        return "body"
    return first_string(value, lambda s: "\ufffd" in s) or "body"


class PolicedRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON body is decoded once, under the input policy."""

    async def json(self) -> Any:
        body = await self.body()
        if field := too_deep(body):  # before any decoder recurses into it
            raise InputRejected(field, f"nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            value = await super().json()
        except UnicodeDecodeError as exc:
            raise InputRejected(_not_utf8_field(body), "is not valid UTF-8") from exc
        except RecursionError as exc:  # too_deep makes this unreachable; kept as a net
            raise InputRejected("body", f"nested deeper than {MAX_JSON_DEPTH} levels") from exc
        # In JSON a NUL can only arrive escaped: without the escape there is nothing to walk.
        if b"\\u0000" in body and (field := first_string(value, _has_nul)):
            raise InputRejected(field, "contains a NUL character")
        return value


async def check_text_inputs(request: Request[Any, Any, Any]) -> None:
    """before_request: no NUL in the path, the query string or an url-encoded form.

    The cheap byte tests come first; a parameter is looked up only when a NUL is there.
    """
    if NUL in request.scope["path"]:
        raise InputRejected("path", "contains a NUL character")
    query: bytes = request.scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in request.query_params.multi_items():
            if NUL in name or NUL in str(value):
                raise InputRejected(name.replace(NUL, "") or "query", "contains a NUL character")
    if request.content_type[0] == RequestEncodingType.URL_ENCODED:
        body = await request.body()
        if b"%00" in body or b"\x00" in body:
            form = await request.form()  # cached: the handler's extractor reuses it
            for name, value in form.multi_items():
                if isinstance(value, str) and (NUL in name or NUL in value):
                    raise InputRejected(name.replace(NUL, "") or "body", "contains a NUL character")
