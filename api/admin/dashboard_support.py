"""What the dashboard's pages, actions and sign-in share: notices, safe redirects, error pages.

Actions post a form and redirect back (post/redirect/get); a refused action comes back as a
notice at the top of the page. Pages answer 401 with the sign-in form and 403 when the role
or the CSRF token is wrong.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from api.admin.auth import csrf_cookie
from domain.errors import DomainError

# The dashboard's own pages: the only places a form's `next` may send the browser back to.
DASHBOARD_PATHS = (
    "/admin/crm-sync",
    "/admin/leads/",
    "/admin/customers",
    "/admin/quotes",
    "/admin/destinations",
    "/admin/custom-fields",
)


def back_to(target: str) -> str:
    """Only ever redirect inside the dashboard."""
    inside = target.startswith(DASHBOARD_PATHS) and "//" not in target and "\\" not in target
    return target if inside else "/admin/crm-sync"


def flash(request: Request[Any, Any, Any], kind: str, message: str) -> None:
    request.set_session({**request.session, "flash": {"kind": kind, "message": message}})


def take_flash(request: Request[Any, Any, Any]) -> dict[str, str] | None:
    session = dict(request.session)
    note = session.pop("flash", None)
    if note is not None:
        request.set_session(session)
    return note


def on_refused_action(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    """A refused action (409, 404, bad input) comes back to the page as a notice."""
    flash(request, "error", exc.message)
    return Redirect(back_to(_referer(request)))


def _referer(request: Request[Any, Any, Any]) -> str:
    referer = request.headers.get("referer", "")
    base = str(request.base_url).rstrip("/")
    return referer[len(base) :] if referer.startswith(base) else "/admin/crm-sync"


def on_unauthorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    """No session: the sign-in form, with a fresh CSRF token (the check never ran)."""
    token, cookie = csrf_cookie(request)
    return Template(
        "admin/login.html",
        context={"error": None, "email": "", "csrf": token},
        status_code=401,
        cookies=[cookie],
    )


def on_forbidden(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    return Template("admin/forbidden.html", context={"detail": exc.detail}, status_code=403)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    NotAuthorizedException: on_unauthorized,
    PermissionDeniedException: on_forbidden,
}
