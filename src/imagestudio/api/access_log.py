"""One log line per failed request (4xx/5xx) at the default log level.

uvicorn's access log is off unless ``-v`` (and then it logs every image poll); what an operator needs
by default is the requests that went wrong: which method and path, the status, how long it took.
The query string is left out (it can carry a search the user typed) and so are headers (keys).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("imagestudio.access")


class ErrorAccessLog:
    """Plain ASGI, outermost: it also sees what the auth and size-limit middlewares refuse."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400:
                    log_failure(scope, status, started)
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            if status == 0:  # nothing was sent: the server answers 500
                log_failure(scope, 500, started)
            raise


def log_failure(scope: Scope, status: int, started: float) -> None:
    client = scope.get("client")
    who = f"{client[0]} " if client else ""
    elapsed_ms = (time.perf_counter() - started) * 1000
    level = logging.ERROR if status >= 500 else logging.WARNING
    log.log(level, "%s%s %s -> %d (%.0f ms)", who, scope["method"], scope["path"], status, elapsed_ms)
