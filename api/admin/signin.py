"""The dashboard's sign-in and sign-out pages (the JSON sign-in is api/admin/auth.py)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.params import URLEncodedBody
from litestar.response import Redirect, Template

from api.admin.auth import LOGIN_RATE_LIMIT, sign_in
from api.admin.params import AdminRequest


class SignInForm(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(max_length=254)] = ""
    password: Annotated[str, msgspec.Meta(max_length=200)] = ""


class DashboardAuthController(Controller):
    path = "/admin"
    include_in_schema = False

    @get("/login", opt={"exclude_from_auth": True})
    async def login_page(self) -> Template:
        return Template("admin/login.html", context={"error": None, "email": ""})

    @post(
        "/login",
        opt={"exclude_from_auth": True},
        middleware=[LOGIN_RATE_LIMIT.middleware],
        status_code=303,
    )
    async def login(
        self, request: AdminRequest, state: State, data: URLEncodedBody[SignInForm]
    ) -> Response[Any]:
        try:
            await sign_in(request, state, data.email, data.password)
        except NotAuthorizedException:
            return Template(
                "admin/login.html",
                context={"error": "Wrong email or password.", "email": data.email},
                status_code=401,
            )
        return Redirect("/admin/crm-sync")

    @post("/logout", status_code=303)
    async def logout(self, request: AdminRequest) -> Redirect:
        request.clear_session()
        return Redirect("/admin/login")
