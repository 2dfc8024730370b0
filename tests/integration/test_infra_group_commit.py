"""Group commit of form submissions (infra/group_commit.py) against real PostgreSQL."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from psycopg import DataError

from domain.intake.commands import SubmitForm
from domain.intake.forms import FormSubmitted, form_writes, submit_form_alone
from domain.intake.origin import Origin
from domain.models import LEADS
from infra.db import Database, with_database
from tests.conftest import count, rows

ORIGIN = Origin(ip_address="127.0.0.1", user_agent="pytest", request_id="group-commit")


def form(i: int) -> SubmitForm:
    body = {"formType": "quote_request", "email": f"buyer{i}@group.example", "name": f"B {i}"}
    return msgspec.json.decode(msgspec.json.encode(body), type=SubmitForm)


def test_concurrent_submissions_share_statements_and_every_one_commits(settings, engine):
    async def work(db: Database) -> tuple[list[FormSubmitted], int, int]:
        results = await asyncio.gather(
            *(submit_form_alone(db, form(i), ORIGIN, settings.routes) for i in range(40))
        )
        assert db._group is not None
        return list(results), db._group.statements, db._group.submissions

    results, statements, submissions = with_database(settings, work)
    assert submissions == 40
    assert statements < 40  # grouped: fewer statements than submissions
    assert count(engine, "form_submissions") == count(engine, "leads") == 40
    assert count(engine, "crm_notifications") == 40
    # Every submission's rows are its own: lead -> form, notification -> lead and form.
    for r in results:
        (lead,) = rows(engine, "SELECT metadata FROM leads WHERE id = :id", id=r.lead_id)
        assert lead["metadata"]["formSubmissionId"] == str(r.form_submission_id)
        (note,) = rows(
            engine, "SELECT data FROM crm_notifications WHERE id = :id", id=r.notification_id
        )
        assert note["data"]["leadId"] == str(r.lead_id)
        assert note["data"]["formSubmissionId"] == str(r.form_submission_id)


def test_a_lone_submission_is_written_at_once_in_its_own_statement(settings, engine):
    async def work(db: Database) -> tuple[int, int]:
        await submit_form_alone(db, form(1), ORIGIN, settings.routes)
        assert db._group is not None
        return db._group.statements, db._group.submissions

    assert with_database(settings, work) == (1, 1)
    assert count(engine, "leads") == 1


def test_a_bad_submission_fails_alone_and_its_group_still_commits(settings, engine):
    async def work(db: Database) -> list[BaseException | None]:
        writes = [form_writes(form(i), ORIGIN, settings.routes)[1] for i in range(10)]
        for table, table_rows in writes[3]:
            if table is LEADS:
                table_rows[0]["email"] = "x" * 300 + "@too.long"  # over VARCHAR(254)
        outcomes = await asyncio.gather(
            *(db.write_grouped(w) for w in writes), return_exceptions=True
        )
        return list(outcomes)

    outcomes = with_database(settings, work)
    assert [i for i, o in enumerate(outcomes) if o is not None] == [3]
    assert isinstance(outcomes[3], DataError)
    # Nothing half-written: the bad submission left no form and no notification either.
    assert count(engine, "form_submissions") == count(engine, "leads") == 9
    assert count(engine, "crm_notifications") == 9


@pytest.mark.parametrize("size", [2, 33, 70])
def test_groups_larger_than_the_cap_are_split(settings, engine, size):
    async def work(db: Database) -> tuple[int, int]:
        await asyncio.gather(
            *(submit_form_alone(db, form(i), ORIGIN, settings.routes) for i in range(size))
        )
        assert db._group is not None
        return db._group.statements, db._group.submissions

    statements, submissions = with_database(settings, work)
    assert submissions == size and count(engine, "leads") == size
    assert statements >= -(-size // 32)
