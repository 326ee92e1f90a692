"""Put a script at the very top of the studio page's ``<head>``, before Gradio's own scripts run.

Gradio picks the page's language from ``navigator.language`` when it starts, and it inserts the
``head=`` HTML of an app only after that. The language links (``?lang=ru``) must therefore act earlier:
this middleware adds :data:`imagestudio.ui.style.LANGUAGE_SCRIPT` to the HTML page itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class EarlyHeadScript:
    """Pure ASGI middleware: for ``GET`` of the page at ``path``, insert ``script`` after ``<head>``."""

    def __init__(self, app: ASGIApp, script: str, path: str = "/") -> None:
        self.app = app
        self.script = script.encode()
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            content_type = dict(start["headers"]).get(b"content-type", b"")
            page = bytes(body)
            if content_type.startswith(b"text/html") and b"<head>" in page:
                page = page.replace(b"<head>", b"<head>" + self.script, 1)
            headers.append((b"content-length", str(len(page)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": page})

        await self.app(scope, receive, capture)
