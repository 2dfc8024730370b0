"""The guardrails' shared state on real Redis and PostgreSQL, and its fallback without Redis."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine

from domain.destinations.state import breaker_view, enable, states
from domain.outbox.delivery import AttemptResult, Claimed
from infra.ratelimit import RedisError
from infra.settings import Secret, Settings, Target, async_url
from tests.conftest import REDIS_URL
from worker.guardrails import Guardrails

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _result(target: str, status: int | None, retry_after: float | None = None) -> AttemptResult:
    n = Claimed(uuid.uuid4(), "NEW_LEAD", target, "NORMAL", {}, datetime.now(UTC), 0, None)
    return AttemptResult(
        n, datetime.now(UTC), 1.0, status, None if status else "timeout", None, retry_after
    )


def _run(pg_url: str, redis_url: str | None, work):  # type: ignore[no-untyped-def]
    settings = Settings(database_url=pg_url, guard_redis_url=redis_url, breaker_pause=60)

    async def main():  # type: ignore[no-untyped-def]
        engine = create_async_engine(async_url(pg_url))
        guard = Guardrails(settings, engine)
        try:
            if guard.shared is not None:
                with contextlib.suppress(RedisError):
                    for name in ("T1", "T2", "T3"):
                        await guard.shared.clear(name)
            return await work(guard, engine)
        finally:
            await guard.close()
            await engine.dispose()

    return asyncio.run(main())


def test_five_timeouts_open_the_breaker_for_every_process_and_no_claim_is_admitted(engine, pg_url):
    target = Target("T1", "http://x", (Secret(SECRET),))

    async def work(guard: Guardrails, eng):  # type: ignore[no-untyped-def]
        assert (await guard.admit(target)).allowed
        async with eng.begin() as conn:
            await guard.record(conn, target, [_result("T1", None) for _ in range(5)])
        other = Guardrails(guard.settings, eng)  # another worker process's view
        try:
            admitted = await other.admit(target)
            view = await breaker_view("T1", other.shared)  # type: ignore[arg-type]
        finally:
            await other.close()
        async with eng.connect() as conn:
            state = (await states(conn))["T1"]
        return admitted, view, state

    admitted, (breaker, until), state = _run(pg_url, f"{REDIS_URL}/1", work)
    assert not admitted.allowed
    assert breaker == "open" and until is not None
    assert 55 < (until - datetime.now(UTC)).total_seconds() <= 60
    assert state.failing_since is not None and state.last_error == "timeout"
    assert REGISTRY.get_sample_value("crm_target_breaker_open", {"target": "T1"}) == 1


def test_the_shared_bucket_grants_one_token_per_fifth_of_a_second_at_5_per_second(pg_url):
    target = Target("T2", "http://x", (Secret(SECRET),), rate_limit_per_second=5)

    async def work(guard: Guardrails, _eng):  # type: ignore[no-untyped-def]
        return [await guard.take(target, 20) for _ in range(2)]

    (first, wait1), (second, wait2) = _run(pg_url, f"{REDIS_URL}/1", work)
    assert (first, second) == (1, 0) and 0.15 < wait2 <= 0.2 and wait1 == 0


def test_without_redis_each_process_keeps_its_own_state(pg_url):
    target = Target("T3", "http://x", (Secret(SECRET),), rate_limit_per_second=5)

    async def work(guard: Guardrails, eng):  # type: ignore[no-untyped-def]
        tokens = await guard.take(target, 20)
        async with eng.begin() as conn:
            await guard.record(conn, target, [_result("T3", 500) for _ in range(5)])
        return tokens, await guard.admit(target)

    (granted, _), admitted = _run(pg_url, "redis://127.0.0.1:9/1", work)  # nothing listens
    assert granted == 1 and not admitted.allowed


def test_410_disables_once_and_enable_clears_it(engine, pg_url):
    target = Target("T1", "http://x", (Secret(SECRET),))

    async def work(guard: Guardrails, eng):  # type: ignore[no-untyped-def]
        async with eng.begin() as conn:
            first = await guard.record(conn, target, [_result("T1", 410)])
            again = await guard.record(conn, target, [_result("T1", 410)])
        refused = await guard.admit(target)
        async with eng.begin() as conn:
            assert await enable(conn, "T1")
        guard._states_at = float("-inf")  # past its 1 s cache
        return first, again, refused, await guard.admit(target)

    first, again, refused, admitted = _run(pg_url, f"{REDIS_URL}/1", work)
    assert [a.kind for a in first] == ["target_disabled"] and again == []
    assert "410" in first[0].details["reason"]
    assert not refused.allowed and admitted.allowed
    assert REGISTRY.get_sample_value("crm_target_enabled", {"target": "T1"}) == 1
