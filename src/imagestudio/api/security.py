"""Who may call the server and how much they may send: bind rules, the API key, the body size limit.

Both middlewares are plain ASGI so they also cover routes FastAPI does not own (404s, anything
mounted later such as the web UI) and refuse before a byte of the body is read.

A browser cannot send ``Authorization: Bearer``, so the key has a second form: a session cookie set
by the login page (:mod:`imagestudio.server.login`). Its value is a random id checked against the
server-side :class:`~imagestudio.api.sessions.SessionStore`, never the key itself: it expires, and
logout or a new key ends it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagestudio.api.errors import ApiError
from imagestudio.config import is_loopback
from imagestudio.errors import ConfigError

if TYPE_CHECKING:
    from imagestudio.api.sessions import SessionStore

log = logging.getLogger(__name__)

#: Paths that never need the key: a load balancer or supervisor must be able to ask if we're alive.
ALWAYS_PUBLIC = ("/healthz",)
#: Paths only programs call: they always get the JSON 401, never the login page.
API_PREFIXES = ("/v1", "/api", "/sdapi", "/mcp")
#: Where a browser types the key (:mod:`imagestudio.server.login`) and where it signs out.
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"


def session_cookie_name(scope: Scope) -> str:
    """The cookie's name, with the server's port in it.

    Cookies are shared by every port of a host: two studios on one machine (with different keys) would
    otherwise overwrite each other's session.
    """
    server = scope.get("server")
    return f"imagestudio-session-{server[1]}" if server and server[1] else "imagestudio-session"


def session_cookie(scope: Scope) -> str | None:
    """The session cookie the request carries, if any."""
    from starlette.requests import cookie_parser

    raw = b"; ".join(value for name, value in scope["headers"] if name == b"cookie")
    if not raw:
        return None
    # Starlette's parser, not http.cookies: one odd cookie from another app on localhost must not
    # make the whole header unreadable.
    return cookie_parser(raw.decode("latin-1")).get(session_cookie_name(scope))


def wants_html_page(scope: Scope) -> bool:
    """A browser navigating to a page (GET that accepts HTML, outside the API paths)."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    path = scope["path"]
    if any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES):
        return False
    accept = b",".join(value for name, value in scope["headers"] if name == b"accept")
    # "*/*" alone is what HTTP libraries send: they get JSON, as before there was a login page.
    return b"text/html" in accept.lower()


def local_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a path on this server, else ``default``: the login's "next" is no open
    redirect. "//host" and "/\\host" are other hosts to a browser, so one leading "/" and only that."""
    from urllib.parse import urlsplit

    if not candidate or not candidate.startswith("/") or candidate[1:2] in ("/", "\\"):
        return default
    if any(ord(char) < 0x20 or char == "\x7f" for char in candidate):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate


def check_bind(host: str, api_key: str | None, insecure: bool) -> None:
    """Refuse to listen beyond this machine without a key, unless explicitly told to (loudly)."""
    if is_loopback(host) or api_key:
        return
    if insecure:
        log.warning(
            "SECURITY WARNING: serving on %s WITHOUT an API key (--insecure): anyone who can reach this "
            "address can use the GPU, read every image and delete them",
            host,
        )
        return
    raise ConfigError(
        f"refusing to listen on {host} without an API key: set server.api_key or IMAGESTUDIO_API_KEY "
        "(or pass --insecure to accept the risk)",
        param="--host",
    )


def _json_error(status: int, message: str, type_: str, code: str, extra_headers: list | None = None):
    body = json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return body, headers + (extra_headers or [])


async def _send_error(send: Send, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """Require the key on every path except the public ones: ``Authorization: Bearer <key>``, a live
    session cookie from the login page (checked in ``sessions``), or HTTP Basic (``server.api_auth``,
    or the key as the password).

    ``public_paths`` are exact paths; ``public_prefixes`` cover whole subtrees (the hook for a UI
    mount that brings its own login). With ``login_path``, a browser asking for a page without the key
    is sent there (303) instead of getting the JSON 401 that programs get.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: str | None,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
        login_path: str | None = None,
        basic_auth: str | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.app = app
        self._key = api_key.encode() if api_key else None
        self._sessions = sessions
        # "user:password" (server.api_auth): what AUTOMATIC1111 clients send as HTTP Basic auth.
        self._basic = basic_auth.encode() if basic_auth else None
        self._public_paths = frozenset((*ALWAYS_PUBLIC, *public_paths, *([login_path] if login_path else [])))
        self._public_prefixes = tuple(public_prefixes)
        self._login_path = login_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            # CORS preflights never carry credentials; the CORS middleware outside answers them.
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if (given is not None and self._matches(given)) or self._has_session(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if self._login_path and wants_html_page(scope):
            await self._redirect_to_login(scope, send)
            return
        message = (
            "missing API key: send it as 'Authorization: Bearer <key>'"
            if given is None
            else "incorrect API key"
        )
        challenge = b'Basic realm="imagestudio", Bearer' if self._basic else b"Bearer"
        body, headers = _json_error(
            401, message, "authentication_error", "invalid_api_key", [(b"www-authenticate", challenge)]
        )
        await _send_error(send, 401, body, headers)

    def _matches(self, header: bytes) -> bool:
        scheme, _, token = header.strip().partition(b" ")
        scheme, token = scheme.lower(), token.strip()
        # compare_digest: the time taken must not tell an attacker how much of a guess was right.
        if scheme == b"bearer":
            return self._key is not None and hmac.compare_digest(token, self._key)
        if scheme == b"basic":
            return self._basic_matches(token)
        return False

    def _basic_matches(self, token: bytes) -> bool:
        """HTTP Basic: ``server.api_auth`` exactly, or any user name with the API key as password."""
        import base64
        import binascii

        try:
            credentials = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return False
        password = credentials.partition(b":")[2]
        by_auth = self._basic is not None and hmac.compare_digest(credentials, self._basic)
        by_key = self._key is not None and hmac.compare_digest(password, self._key)
        return by_auth or by_key

    def _has_session(self, scope: Scope) -> bool:
        return self._sessions is not None and self._sessions.is_valid(session_cookie(scope))

    async def _redirect_to_login(self, scope: Scope, send: Send) -> None:
        here = scope["path"]
        if scope.get("query_string"):
            here += "?" + scope["query_string"].decode("latin-1")
        location = f"{self._login_path}?next={quote(here, safe='')}"
        await _send_error(
            send,
            303,
            b"",
            [
                (b"location", location.encode()),
                (b"content-length", b"0"),
                (b"cache-control", b"no-store"),
            ],
        )

    def _is_public(self, path: str) -> bool:
        return path in self._public_paths or any(path.startswith(p) for p in self._public_prefixes)


class UploadTooLarge(ApiError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {limit_bytes / 1e6:g} MB (server.max_upload_mb)",
            code="request_too_large",
        )


class BodyTooSlow(ApiError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {timeout_s:g} s (server.body_read_timeout_s)",
            type="invalid_request_error",
            code="request_timeout",
            headers={"Connection": "close"},
        )


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes``: at once when Content-Length says so, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: A client trickling its body (slow-loris) gets a 408 after this long, not a worker forever.
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = UploadTooLarge(self.max_bytes)
            body, headers = _json_error(413, error.message, error.type, "request_too_large")
            await _send_error(send, 413, body, headers)
            return
        received = 0
        body_done = False
        deadline = None if self.body_timeout_s is None else time.monotonic() + self.body_timeout_s

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done or deadline is None:
                # After the body, receive() waits for a disconnect (streams do that for hours): no deadline.
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    raise BodyTooSlow(self.body_timeout_s or 0) from None
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app's body reading; the error handlers turn it into a 413.
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
