"""Alembic environment: the URL comes from the crm settings (DATABASE_URL)."""

from __future__ import annotations

from alembic import context

from domain.models import Base
from infra.db import make_sync_engine
from infra.settings import Settings

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url
        engine = make_sync_engine(Settings(database_url=url))
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
