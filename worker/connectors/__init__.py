"""Destination kinds other than `webhook`: one module per kind, registered here by its kind.

A kind's module is `worker.connectors.<kind>` and names its class at module level
(`CONNECTOR = SlackConnector`, the class carrying `kind = "slack"`). Modules are imported on
first use, so a worker only loads the client libraries of the kinds it delivers to, and a kind
whose module is not there yet is reported (its rows wait) instead of breaking the worker.
"""

from __future__ import annotations

import importlib
import logging

from worker.connectors.base import Connector

log = logging.getLogger("crm.connectors")


def connector_class(kind: str) -> type[Connector] | None:
    """The connector class of `kind`, or None when no module provides it."""
    name = f"{__name__}.{kind}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise
    found = getattr(module, "CONNECTOR", None)
    if found is None or getattr(found, "kind", None) != kind:
        log.error("%s has no CONNECTOR class with kind = %r", name, kind)
        return None
    return found  # type: ignore[no-any-return]


class Connectors:
    """One connector per kind and worker process, created on first use."""

    def __init__(self) -> None:
        self._made: dict[str, Connector | None] = {}

    def get(self, kind: str) -> Connector | None:
        if kind not in self._made:
            cls = connector_class(kind)
            if cls is None:
                log.error("no connector for destination kind %r: its notifications wait", kind)
            self._made[kind] = None if cls is None else cls()
        return self._made[kind]

    async def close(self) -> None:
        for connector in self._made.values():
            if connector is not None:
                try:
                    await connector.close()
                except Exception:  # closing at shutdown: log, go on closing the others
                    log.exception("closing the %s connector", connector.kind)
        self._made.clear()
