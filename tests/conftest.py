"""Shared fixtures: each test run creates its own PostgreSQL database and drops it at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from domain.models import Base
from infra.db import make_sync_engine
from infra.egress import parse_allow
from infra.migrate import upgrade
from infra.settings import Settings

PG_ADMIN_URL = os.environ.get("CRM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CRM_TEST_REDIS", "redis://127.0.0.1:6379")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"crm_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)  # the real migrations, not create_all
    yield url
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def engine(pg_url: str) -> Iterator[Engine]:
    eng = make_sync_engine(Settings(database_url=pg_url))
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> None:
    if "engine" not in request.fixturenames:
        return
    eng: Engine = request.getfixturevalue("engine")
    # Only the tables the last test wrote: one EXISTS probe per table is a few milliseconds,
    # a TRUNCATE of every table (and every outbox partition) about 120 ms per test.
    probe = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT FROM {t.name})"
        for t in Base.metadata.sorted_tables
    )
    with eng.begin() as conn:
        written = conn.execute(text(probe)).scalars().all()
        if written:
            conn.execute(text(f"TRUNCATE {', '.join(written)} CASCADE"))


# The tests' receivers listen on 127.0.0.1, which the egress rule refuses unless allowed; only
# that address is allowed, so a test can never reach anything else.
LOOPBACK_ONLY = parse_allow("127.0.0.1/32")


@pytest.fixture(scope="session")
def settings(pg_url: str) -> Settings:
    return Settings(database_url=pg_url, rate_limit=None, egress_allow=LOOPBACK_ONLY)


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings)) as c:
        yield c


@pytest.fixture
def make_client(pg_url: str) -> Iterator[Callable[..., TestClient]]:
    """A client on an app with other settings (routing, limits), closed after the test."""
    opened: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        overrides.setdefault("rate_limit", None)
        overrides.setdefault("egress_allow", LOOPBACK_ONLY)
        c = TestClient(app=create_app(Settings(database_url=pg_url, **overrides)))  # type: ignore[arg-type]
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def count(engine: Engine, table: str, where: str = "true", **params: object) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
        )


def rows(engine: Engine, sql: str, **params: object) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]


DOMAIN_TABLES = (
    "form_submissions",
    "leads",
    "crm_notifications",
    "users",
    "customers",
    "newsletter_subscribers",
    "quotes",
    "quote_lines",
    "quote_events",
    "idempotency_keys",
)


def total_rows(engine: Engine) -> dict[str, int]:
    return {t: count(engine, t) for t in DOMAIN_TABLES}
