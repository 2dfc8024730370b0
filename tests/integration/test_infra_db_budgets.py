"""A request's statements are bounded by CRM_DB_TIMEOUT; a command's are not."""

from __future__ import annotations

from sqlalchemy import text

from infra.db import Database, with_database
from infra.settings import Settings


async def _statement_timeout(db: Database) -> str:
    async with db.engine.connect() as conn:
        return str((await conn.execute(text("SHOW statement_timeout"))).scalar_one())


def test_the_api_bounds_statements_and_commands_do_not(pg_url):
    settings = Settings(database_url=pg_url, db_timeout=3.0)

    async def api(_: Database) -> str:
        db = Database(settings)  # what create_app builds
        try:
            return await _statement_timeout(db)
        finally:
            await db.dispose()

    assert with_database(settings, api) == "3s"
    # crm leads import/export, repairs: a big table's statement may run past a request's budget
    assert with_database(settings, _statement_timeout) == "0"
