"""Whose jobs are whose on the pages: a browser's own cookie, kept across reloads and closed tabs.

The studio's queue lives on the server (as in ComfyUI and InvokeAI): a page that is reloaded or closed
leaves its jobs running, and on return the queue panel lists them again. Gradio's session id is new on
every page load, so the jobs are filed under this cookie instead, set by the server on the page's first
``GET`` (HttpOnly: no script of the page reads it; SameSite=Strict: other sites' pages never send it).
"""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "imagestudio_owner"
#: A year: the owner only ties a browser to its own waiting jobs, it grants nothing.
MAX_AGE_S = 365 * 24 * 3600


def owner_cookie(cookie_header: str | None) -> str | None:
    """The owner id in a ``Cookie`` header, if it has a well-formed one."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except Exception:  # noqa: BLE001 - a malformed header from the client just has no owner
        return None
    morsel = jar.get(COOKIE)
    value = morsel.value if morsel is not None else ""
    return value if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum() else None


class OwnerCookie:
    """Pure ASGI middleware: a ``GET`` of the page without the owner cookie sets one."""

    def __init__(self, app: ASGIApp, path: str = "/") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if owner_cookie(headers.get(b"cookie", b"").decode("latin-1")) is not None:
            await self.app(scope, receive, send)
            return
        value = (
            f"{COOKIE}={secrets.token_urlsafe(18)}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; SameSite=Strict"
        )

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"set-cookie", value.encode())]}
            await send(message)

        await self.app(scope, receive, with_cookie)
