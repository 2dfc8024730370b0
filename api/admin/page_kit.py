"""What the record pages (lead, customer, quote, destinations, custom fields) share: one way to
render a page with the signed-in user and the pending notice, and one answer to a refused
request: a page that does not exist is a 404 page, a refused action comes back as a notice.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from api.admin.dashboard_support import back_to, flash, take_flash
from domain.errors import DomainError, NotFound


def render(
    request: Request[Any, Any, Any],
    template: str,
    nav: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A dashboard page: `nav` picks the top bar's active tab."""
    return Template(
        template,
        context={
            "user": request.user,
            "flash": take_flash(request),
            "nav": nav,
            "here": request.url.path,
            **context,
        },
        status_code=status_code,
        headers=headers,
    )


def on_page_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """GET of an unknown record: a 404 page; a refused action: back to the page with a notice."""
    if request.method == "GET":
        status = 404 if isinstance(exc, NotFound) else 400
        return Template(
            "admin/missing.html",
            context={"user": request.user, "nav": "", "detail": exc.message},
            status_code=status,
        )
    flash(request, "error", exc.message)
    return Redirect(back_to(_page_of(request.url.path)), status_code=303)


def _page_of(action_path: str) -> str:
    """The page an action was posted from: /admin/leads/{id}/status -> /admin/leads/{id};
    the destinations and custom fields actions come from their list page."""
    for section in ("/admin/destinations", "/admin/custom-fields"):
        if action_path.startswith(section + "/"):
            return section
    return action_path.rsplit("/", 1)[0]


def form_error(exc: msgspec.ValidationError | ValueError) -> DomainError:
    """A form field msgspec refused, as a notice naming it ("Expected ... - at `$.currency`")."""
    return DomainError(str(exc))


PAGE_EXCEPTIONS: ExceptionHandlersMap = {DomainError: on_page_error}  # type: ignore[dict-item]
