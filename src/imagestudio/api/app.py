"""The FastAPI application: routes over the services on ``app.state``, errors in OpenAI's shape.

Middleware, outermost first: Host check (DNS rebinding) → CORS (only ``server.cors_origins``; present
even when empty, so the mounted web UI adds no CORS of its own) → Origin check (other sites' pages
change nothing) → API key (only when one is configured) → body size limit → HEAD as GET on API paths →
the routes. The web UI mounts on this same app. :mod:`imagestudio.api.browser_guard` says why.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from imagestudio import __version__
from imagestudio.api import a1111, history, jobs, models, openai_images, prompts, system
from imagestudio.api.browser_guard import HostGuard, OriginGuard
from imagestudio.api.clients import ClientTag, StreamLimiter
from imagestudio.api.errors import install_error_handlers
from imagestudio.api.security import BearerAuth, BodySizeLimit
from imagestudio.api.unmatched import HeadAsGet

if TYPE_CHECKING:
    from fastapi import APIRouter

    from imagestudio.api.sessions import SessionStore
    from imagestudio.config import Settings
    from imagestudio.services import Services

    #: Makes the login page's routes from the key and the session store (:mod:`imagestudio.server.login`).
    LoginRoutes = Callable[[str, SessionStore], APIRouter]

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    public_prefixes: Iterable[str] = (),
    login_routes: LoginRoutes | None = None,
) -> FastAPI:
    """Build the API's app (:func:`imagestudio.server.build_app` adds the pages and the login page).

    Without ``services`` the app creates its own and starts/stops them with its lifespan; with them,
    the caller owns their lifecycle (tests, or a process hosting several apps). ``public_prefixes``
    are paths the API key does not guard (the hook for a UI mount with its own login).
    ``login_routes`` makes the routes of the page where a browser types the key (when one is set);
    without it a browser without the key gets the 401 a program gets.
    """
    from imagestudio.services import Services

    owned = services is None
    if services is None:
        from imagestudio.engine.preview import LatentPreviewer

        # Previews ride on step events (the web UI shows them); a few per second at most, cheap.
        services = Services.create(settings, preview=LatentPreviewer())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned:
            services.start()
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(services.close)

    app = FastAPI(
        title="imagestudio",
        version=__version__,
        summary="Local Z-Image-Turbo and Qwen-Image-Edit-2511: OpenAI-compatible images API and job API.",
        lifespan=lifespan,
    )
    app.state.services = services
    # Convenience aliases for the UI and the routes.
    app.state.settings = services.settings
    app.state.queue = services.queue
    app.state.history = services.history
    app.state.studio = services.studio

    install_error_handlers(app)
    for router in (openai_images.router, jobs.router, history.router, system.router, models.router):
        app.include_router(router)
    app.include_router(prompts.router)
    a1111.install(app, services)

    server = settings.server
    app.add_middleware(HeadAsGet)
    app.add_middleware(ClientTag)
    app.state.event_streams = StreamLimiter(server.max_event_streams_per_client)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=int(server.max_upload_mb * 1_000_000),
        body_timeout_s=server.body_read_timeout_s,
    )
    api_key = server.api_key.get_secret_value() if server.api_key is not None else None
    basic_auth = server.api_auth.get_secret_value() if server.api_auth is not None else None
    if basic_auth and not api_key:
        # Basic auth alone (A1111's --api-auth): browsers ask for it themselves, no login page.
        app.add_middleware(
            BearerAuth, api_key=None, basic_auth=basic_auth, public_prefixes=tuple(public_prefixes)
        )
    if api_key:
        from imagestudio.api.security import LOGIN_PATH, LOGOUT_PATH
        from imagestudio.api.sessions import SessionStore

        sessions = SessionStore(
            services.settings.history_db.parent / "sessions.sqlite",
            api_key,
            ttl_s=server.session_ttl_hours * 3600,
        )
        if login_routes is not None:
            # Before any UI mount at "/", so these paths are ours; a browser without the key is sent here.
            app.include_router(login_routes(api_key, sessions))
        app.add_middleware(
            BearerAuth,
            api_key=api_key,
            public_paths=(LOGOUT_PATH,),
            public_prefixes=tuple(public_prefixes),
            login_path=LOGIN_PATH if login_routes is not None else None,
            basic_auth=basic_auth,
            sessions=sessions,
        )
    app.add_middleware(OriginGuard, cors_origins=server.cors_origins)
    from fastapi.middleware.cors import CORSMiddleware

    # Always present: with it, a mounted Gradio app leaves CORS to us instead of allowing every
    # localhost origin with credentials. Empty cors_origins allows no other origin at all.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=server.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "Location"],
    )
    app.add_middleware(HostGuard, bound_host=server.host, allowed_hosts=server.allowed_hosts)
    _install_openapi(app, bearer=bool(api_key))
    return app


def _install_openapi(app: FastAPI, *, bearer: bool) -> None:
    """The generated schema, minus FastAPI's 422 (we answer 400), plus the bearer scheme when used."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.setdefault("components", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        if bearer:
            components.setdefault("securitySchemes", {})["bearerAuth"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "server.api_key / IMAGESTUDIO_API_KEY",
            }
            for path, path_item in schema.get("paths", {}).items():
                for operation in path_item.values():
                    if path != "/healthz":
                        operation["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
