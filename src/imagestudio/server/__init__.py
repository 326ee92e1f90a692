"""The one place that assembles the web server: the HTTP API, MCP, the login page, the studio's pages.

``imagestudio serve`` calls :func:`build_app`. The API (:mod:`imagestudio.api`) and the pages
(:mod:`imagestudio.ui`) know nothing of each other; this package joins them on one FastAPI app:
the API's routes first (so they keep their paths), the MCP server at ``/mcp``
(:mod:`imagestudio.mcp_server`, Streamable HTTP), then the login page when a key guards the server
(:mod:`.login`), then the pages at "/", whose catch-all mount leaves unmatched API paths to the API's
own 404/405 (:class:`imagestudio.api.unmatched.ApiFallback`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from imagestudio.config import Settings
    from imagestudio.services import Services


def build_app(settings: Settings, *, services: Services | None = None, pages: bool = True) -> FastAPI:
    """The server's app over ``services`` (its own, started with the app, when None).

    ``pages=False`` leaves out the studio's pages (Gradio): the API and the login page only.
    """
    from imagestudio.api import create_app
    from imagestudio.mcp_server.server import mount_mcp
    from imagestudio.server.login import login_router

    app = create_app(settings, services=services, login_routes=login_router)
    # Behind the same middleware as every route: the Host allow-list, the Origin check, the key.
    mount_mcp(app)
    if not pages:
        return app
    from imagestudio.ui import mount_studio

    mounted: FastAPI = mount_studio(app)
    _answer_api_paths_ourselves(mounted)
    return mounted


def _answer_api_paths_ourselves(app: FastAPI) -> None:
    """Unmatched ``/v1`` and ``/api`` requests get the API's 404/405, not Gradio's ``{"detail"}``."""
    from starlette.routing import Mount

    from imagestudio.api.unmatched import ApiFallback

    for route in app.router.routes:
        if isinstance(route, Mount) and route.path == "":
            route.app = ApiFallback(route.app, routes_of=app)
