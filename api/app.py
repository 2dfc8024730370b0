"""Litestar app factory."""

from __future__ import annotations

import gc

from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from api import admin, directory
from api.errors import EXCEPTION_HANDLERS, document_error_shape
from api.health import live, ready
from api.inbound import receive_inbound
from api.inputs import PolicedRequest, check_text_inputs
from api.observability import MetricsController, edge, litestar_logging
from api.protection import cors, rate_limit, rate_limited, shared_store
from api.public import PublicController
from api.pull import PullController
from api.transaction import DEPENDENCIES, WAKER
from api.wakeup import Waker
from infra.db import Database
from infra.logs import configure_logging
from infra.settings import Settings

WAKER_PROCESS = "waker_process"


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    limiter = rate_limit(settings)  # per-client limit on the public POSTs (api/protection.py)

    async def startup(app: Litestar) -> None:
        app.state.db = Database(settings)
        await app.state.db.open()  # the form fast path's pool, outside any request's context
        # What exists now lives as long as the process: keep it out of the collector's full
        # passes, which otherwise walk it all and stall every request in flight.
        gc.collect()
        gc.freeze()
        # Env and registry destinations, reloaded in the background (api/directory.py).
        await directory.start(app.state, settings, app.state.db)
        # Woken after each commit that wrote outbox rows (api/transaction.py) while something
        # pushes (a destination may be added at run time); else rows wait for pulls.
        waker = app.state[WAKER_PROCESS] = Waker(settings)
        app.state[WAKER] = lambda: waker() if directory.pushing(app.state) else None

    async def shutdown(app: Litestar) -> None:
        await directory.stop(app.state)
        if (waker := app.state.get(WAKER_PROCESS)) is not None:
            waker.close()
        await app.state.db.dispose()
        if limiter is not None:
            await limiter.close()

    configure_logging(settings)  # one structured format for every logger (infra/logs.py)
    admin_side = admin.build(settings)  # sign-in, admin API and dashboard (api/admin)
    app = Litestar(
        route_handlers=[
            PublicController,
            PullController,
            receive_inbound,  # signed by the destination, not a session
            live,
            ready,
            MetricsController,
            *admin_side.route_handlers,
        ],
        middleware=[
            edge,  # request id, security headers, submission counts, request metrics
            *([DefineMiddleware(rate_limited, limiter=limiter)] if limiter else []),
            *admin_side.middleware,
        ],
        stores={
            # Shared by every API process, so any of them serves a signed-in admin.
            admin.SESSION_STORE: shared_store(settings, "crm-sessions"),
            admin.LOGIN_RATE_LIMIT_STORE: shared_store(settings, "crm-login-attempts"),
        },
        dependencies=DEPENDENCIES,  # the one transaction boundary (api/transaction.py)
        cors_config=cors(settings),
        template_config=admin_side.template_config,
        state=State({"settings": settings}),
        on_startup=[startup],
        on_shutdown=[shutdown],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        # The input policy (api/inputs.py), for every route. Litestar takes the nearest layer's
        # request_class and before_request: no router, controller or handler may set its own.
        request_class=PolicedRequest,
        before_request=check_text_inputs,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="crm-sync",
            version="0.1.0",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=litestar_logging(),
        debug=settings.debug,
    )
    document_error_shape(app.openapi_schema)
    return app
