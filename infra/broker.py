"""The embedded broker (kombu's SQLAlchemy transport on a SQLite file), polled fast.

kombu's virtual transports sleep `polling_interval` after an empty poll, one second by default:
on `crm run` every wake-up waited for it, so a form's webhook arrived about a second after the
commit. The virtual transport reads the option from the transport options, but kombu's
SQLAlchemy channel hands every transport option to `create_engine`, which rejects it; this
channel keeps kombu's own options to itself. Registered under kombu's `sqla`/`sqlalchemy`
names, so the broker URL stays `sqla+sqlite:///...`.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy import create_engine

# Transport options kombu itself reads; the rest are create_engine's.
_KOMBU_OPTIONS = frozenset(
    {
        "polling_interval",
        "queue_tablename",
        "message_tablename",
        "callback",
        "errback",
        "max_retries",
        "interval_start",
        "interval_step",
        "interval_max",
        "retry_errors",
    }
)


class Channel(kombu_sqla.Channel):  # type: ignore[misc]
    def _engine_from_config(self) -> Any:
        conninfo = self.connection.client
        options = {k: v for k, v in conninfo.transport_options.items() if k not in _KOMBU_OPTIONS}
        return create_engine(conninfo.hostname, **options)


class Transport(kombu_sqla.Transport):  # type: ignore[misc]
    Channel = Channel


def register_transports() -> None:
    """Before the first broker connection of the process (Celery app, API wake-up)."""
    for alias in ("sqla", "sqlalchemy"):
        TRANSPORT_ALIASES[alias] = f"{__name__}:Transport"
