"""Requests that match no API route still get OpenAI-shaped answers, and HEAD works wherever GET does.

With the web UI mounted at "/", every path the API does not own falls through to Gradio, which answers
``{"detail": "Not Found"}`` — also for ``GET`` on a POST-only API route (a 405) and for ``HEAD`` on a
GET route. :class:`ApiFallback` wraps that mount: under ``/v1`` and ``/api`` it answers itself, with
the error shape every other API error has. :class:`HeadAsGet` runs a ``HEAD`` on an API path as its
``GET`` and drops the body (FastAPI's ``@router.get`` does not add HEAD, unlike Starlette's routes).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagestudio.api.security import API_PREFIXES, _json_error, _send_error

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _is_api(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def _allowed_methods(routes: list[BaseRoute], scope: Scope) -> set[str]:
    """Methods some route takes on ``scope``'s path (empty: no route has this path).

    Asked of each route by matching, since included routers keep their routes' methods to themselves.
    """
    from starlette.routing import Mount

    candidates = [route for route in routes if not isinstance(route, Mount)]
    return {
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in candidates)
    }


class ApiFallback:
    """In front of a catch-all mount: API paths that reached it get the API's own 404 or 405."""

    def __init__(self, app: ASGIApp, routes_of: Starlette) -> None:
        self.app = app
        # The parent app, read at request time so routes added after the mount count too.
        self._parent = routes_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A mount keeps the full "path" and moves what it matched into "root_path".
        full_path = scope["path"]
        if scope["type"] != "http" or not _is_api(full_path):
            await self.app(scope, receive, send)
            return
        probe = {**scope, "root_path": scope.get("app_root_path", "")}
        methods = _allowed_methods(self._parent.router.routes, probe)
        method = scope["method"]
        if methods and method not in methods:
            allow = ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
            body, headers = _json_error(
                405,
                f"method {method} is not allowed on {full_path} (allowed: {allow})",
                "invalid_request_error",
                "method_not_allowed",
                [(b"allow", allow.encode())],
            )
            await _send_error(send, 405, body, headers)
            return
        body, headers = _json_error(404, f"no route {method} {full_path}", "not_found_error", "not_found")
        await _send_error(send, 404, body if method != "HEAD" else b"", headers)


class HeadAsGet:
    """Answer ``HEAD`` on an API path as its ``GET`` would, headers only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["path"].rstrip("/").endswith("/events"):
            # An event stream's GET runs until its job ends: not something to run for headers alone.
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
