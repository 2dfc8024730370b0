"""The edge's request metrics survive any input and any failure: every request is counted with
the status it got, and the in-progress gauge always comes back down."""

from __future__ import annotations

import pytest
from litestar import Litestar, Request, post
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from api.errors import EXCEPTION_HANDLERS
from api.inputs import PolicedRequest
from api.observability import FORMS_PATH, edge
from tests.integration.test_infra_metrics import scrape, value

JSON = {"Content-Type": "application/json"}
FORM = {"method": "POST", "path": FORMS_PATH, "app_name": "crm-sync"}
BAD_BODIES = [
    b'{"formType":"contact_us","email":"a@b.io","name":"\xff"}',  # not UTF-8
    b'{"formType":"contact_us","email":"a@b.io","metadata":' + b"[" * 1000 + b"]" * 1000 + b"}",
    b'{"formType":"contact_us","email":"a@b.io","name":"\\u0000"}',
    b"[" * 60_000,  # under the 64 KiB body limit
]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_input_is_counted_as_invalid_and_leaves_nothing_in_progress(client, body):
    before = scrape(client)
    r = client.post(FORMS_PATH, content=body, headers=JSON)
    assert r.status_code == 400, r.text
    after = scrape(client)
    assert value(after, "crm_api_requests_in_progress", **FORM) == 0
    total = "crm_api_requests_total"
    labels = {**FORM, "status_code": "400"}
    assert value(after, total, **labels) - value(before, total, **labels) == 1
    grew = value(after, "crm_submissions_total", form_type="unknown", result="invalid") - value(
        before, "crm_submissions_total", form_type="unknown", result="invalid"
    )
    known = value(after, "crm_submissions_total", form_type="contact_us", result="invalid") - (
        value(before, "crm_submissions_total", form_type="contact_us", result="invalid")
    )
    assert grew + known == 1  # counted once, under the type the decoded body named, if any


@post(FORMS_PATH, status_code=201)
async def crash(request: Request) -> None:
    """A submission handler that reads the body and then fails: a 500."""
    await request.body()
    raise RuntimeError("boom")


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_5xx_is_counted_as_an_error_and_leaves_nothing_in_progress(body):
    app = Litestar(
        route_handlers=[crash],
        middleware=[edge],
        request_class=PolicedRequest,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    errors = {**FORM, "status_code": "500"}
    before = sample("crm_api_requests_error_total", **errors)
    submissions = sample("crm_submissions_total", form_type="unknown", result="error")
    with TestClient(app=app, raise_server_exceptions=False) as c:
        r = c.post(FORMS_PATH, content=body, headers=JSON)
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert sample("crm_api_requests_error_total", **errors) == before + 1
    assert sample("crm_submissions_total", form_type="unknown", result="error") == submissions + 1
    assert sample("crm_api_requests_in_progress", **FORM) == 0
