"""What a web page in the user's browser may not do to a server on this machine.

A server on 127.0.0.1 without a key is still reachable by every web site the user visits: a page can
send it simple requests (form posts need no CORS preflight) and, through DNS rebinding (its own name
re-pointed at 127.0.0.1), even read the answers. Two plain ASGI checks close that, in front of every
route, the web UI's included:

* :class:`HostGuard`: the ``Host`` header must name this server (loopback, the address the request
  came in on, ``server.host``, or ``server.allowed_hosts``). A rebinding page's requests carry its own
  name, so they are refused before any route runs.
* :class:`OriginGuard`: a state-changing request (POST/PUT/PATCH/DELETE, a WebSocket, or anything
  on ``/mcp``) whose ``Origin`` (or, lacking one, ``Referer``) is another site is refused; programs send
  neither and keep working. JSON routes under ``/v1``, ``/api`` and ``/mcp`` also refuse the form and
  text content types a page can send without a preflight.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from imagestudio.api.security import API_PREFIXES, _json_error, _send_error, is_loopback

#: Methods that change something; a page's GET can only read, and reading needs CORS.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Content types a page can POST cross-site without a preflight, and that no JSON route takes.
_SIMPLE_NON_JSON = frozenset({"application/x-www-form-urlencoded", "text/plain"})
#: The routes that read HTML-form fields (multipart with files): a urlencoded body is theirs to refuse,
#: with the message that says what is missing (it can hold no image, so it never starts a job).
FORM_ROUTES = frozenset({"/v1/images/edits", "/api/jobs/edits"})
#: Paths whose every request has its Origin checked, reads included: the MCP specification asks a
#: Streamable HTTP server to validate Origin on all incoming connections (its GET opens an event stream).
ORIGIN_CHECKED_PATHS = frozenset({"/mcp"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def split_host(value: str) -> tuple[str, int | None]:
    """``"Example.com:80"`` → ``("example.com", 80)``; ``"[::1]:7860"`` → ``("::1", 7860)``.

    A malformed value gives a name that matches nothing, never an exception.
    """
    value = value.strip().lower()
    port: int | None = None
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        elif rest:
            return "\0", None
        return name, port
    if value.count(":") == 1:
        value, _, raw_port = value.partition(":")
        if not raw_port.isdigit():
            return "\0", None
        port = int(raw_port)
    return value.rstrip("."), port


def _one_line(value: str, limit: int = 120) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


class HostGuard:
    """Refuse requests whose ``Host`` is not a name of this server (DNS rebinding)."""

    def __init__(
        self, app: ASGIApp, bound_host: str | None = None, allowed_hosts: Iterable[str] = ()
    ) -> None:
        self.app = app
        names = {split_host(host)[0] for host in allowed_hosts if host.strip() != "*"}
        if bound_host and not _is_wildcard(bound_host):
            names.add(split_host(bound_host.strip("[]") if ":" in bound_host else bound_host)[0])
        self._names = frozenset(names)
        self._any = any(host.strip() == "*" for host in allowed_hosts)

    def allows(self, scope: Scope) -> bool:
        if self._any:
            return True
        host = _header(scope, b"host")
        if host is None:
            # HTTP/1.0 programs may send none; a browser always does.
            return True
        name, _ = split_host(host)
        if name in self._names or is_loopback(name):
            return True
        server = scope.get("server")
        # The address the connection arrived on: a LAN client typing the server's IP is not rebinding.
        return server is not None and name == str(server[0]).lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allows(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = _one_line(split_host(_header(scope, b"host") or "")[0])
        body, headers = _json_error(
            400,
            f"this server does not answer to the host name {shown!r}: reach it by its address, or add "
            "the name to server.allowed_hosts",
            "invalid_request_error",
            "host_not_allowed",
        )
        await _send_error(send, 400, body, headers)


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


class OriginGuard:
    """Refuse state-changing requests sent by another site's page, and form/text posts to the API."""

    def __init__(self, app: ASGIApp, cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        self._trusted = frozenset(origin.strip().rstrip("/").lower() for origin in cors_origins)

    def is_own(self, url: str, scope: Scope) -> bool:
        """True if ``url`` (an Origin or a Referer) is this server's own origin or a trusted one."""
        try:
            parts = urlsplit(url.strip())
            origin_port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False  # "null" (sandboxed frames, file:// pages), data:, extensions …
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if origin in self._trusted:
            return True
        host = _header(scope, b"host")
        if host is None:
            return False
        host_name, host_port = split_host(host)
        # Default ports by the page's scheme: behind a TLS proxy the Host has no port, the Origin https.
        default = _DEFAULT_PORTS[parts.scheme]
        return parts.hostname.lower().rstrip(".") == host_name and (origin_port or default) == (
            host_port or default
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" or (
            scope["type"] == "http"
            and (scope["method"] in UNSAFE_METHODS or scope["path"].rstrip("/") in ORIGIN_CHECKED_PATHS)
        ):
            refusal = self._refusal(scope)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                status, message, code = refusal
                body, headers = _json_error(
                    status, message, "permission_error" if status == 403 else "invalid_request_error", code
                )
                await _send_error(send, status, body, headers)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        method = scope.get("method", "GET")
        origin = _header(scope, b"origin")
        source = origin if origin is not None else _header(scope, b"referer")
        # Browsers send "Origin: null" from pages with a no-referrer policy, their own included;
        # Sec-Fetch-Site is set by the browser alone (no page can forge it) and says who really sent it.
        same_origin = origin == "null" and _header(scope, b"sec-fetch-site") == "same-origin"
        if source is not None and not same_origin and not self.is_own(source, scope):
            shown = _one_line(origin if origin is not None else urlsplit(source).netloc or source)
            return (
                403,
                f"refusing a {method} sent by the page at {shown!r}: only this server's own pages "
                "(and server.cors_origins) may change anything",
                "foreign_origin",
            )
        if scope["type"] == "http" and method != "DELETE" and _is_api(scope["path"]):
            content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            form_route = scope["path"].rstrip("/") in FORM_ROUTES
            if content_type in _SIMPLE_NON_JSON and not (form_route and content_type != "text/plain"):
                return (
                    415,
                    f"this route takes JSON (or multipart with files), not {content_type}",
                    "unsupported_media_type",
                )
        return None


def _is_api(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)
