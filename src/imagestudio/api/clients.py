"""Tagging each HTTP request with its client's address, for the per-client limits."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from imagestudio.jobs.clients import serving


def client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class ClientTag:
    """Plain ASGI middleware: the request (and the jobs it submits) belong to the caller's address."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with serving(client_address(scope)):
            await self.app(scope, receive, send)


class StreamLimiter:
    """Counts open event streams per client address; one instance per app (``app.state.event_streams``).

    Used only from the event loop's thread, so a plain dict needs no lock.
    """

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: dict[str, int] = {}

    def open(self, client: str | None) -> bool:
        """Count a new stream for ``client``; False (and nothing counted) when it has its share."""
        if client is None:
            return True
        if self._open.get(client, 0) >= self.per_client:
            return False
        self._open[client] = self._open.get(client, 0) + 1
        return True

    def close(self, client: str | None) -> None:
        if client is None or client not in self._open:
            return
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]
