"""Who may call the server and how much they may send: bind rules, the API key, the body size limit.

Both middlewares are plain ASGI so they also cover routes FastAPI does not own (404s, anything
mounted later such as the web UI) and refuse before a byte of the body is read.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagestudio.api.errors import ApiError
from imagestudio.errors import ConfigError

log = logging.getLogger(__name__)

#: Paths that never need the key: a load balancer or supervisor must be able to ask if we're alive.
ALWAYS_PUBLIC = ("/healthz",)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        # A host name other than localhost may resolve to anything: treat it as public.
        return False


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
    """Require ``Authorization: Bearer <key>`` on every path except the public ones.

    ``public_paths`` are exact paths; ``public_prefixes`` cover whole subtrees (the hook for a UI
    mount that brings its own login).
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: str,
        public_paths: Iterable[str] = (),
        public_prefixes: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._key = api_key.encode()
        self._public_paths = frozenset((*ALWAYS_PUBLIC, *public_paths))
        self._public_prefixes = tuple(public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            # CORS preflights never carry credentials; the CORS middleware outside answers them.
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if given is not None and self._matches(given):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message = (
            "missing API key: send it as 'Authorization: Bearer <key>'"
            if given is None
            else "incorrect API key"
        )
        body, headers = _json_error(
            401, message, "authentication_error", "invalid_api_key", [(b"www-authenticate", b"Bearer")]
        )
        await _send_error(send, 401, body, headers)

    def _matches(self, header: bytes) -> bool:
        scheme, _, token = header.strip().partition(b" ")
        # compare_digest: the time taken must not tell an attacker how much of a guess was right.
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)

    def _is_public(self, path: str) -> bool:
        return path in self._public_paths or any(path.startswith(p) for p in self._public_prefixes)


class UploadTooLarge(ApiError):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            413,
            f"the request body is larger than {limit_bytes / 1e6:g} MB (server.max_upload_mb)",
            code="request_too_large",
        )


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes``: at once when Content-Length says so, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

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

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app's body reading; the error handlers turn it into a 413.
                    raise UploadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
