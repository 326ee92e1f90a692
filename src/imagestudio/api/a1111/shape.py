"""A1111's shapes: the ``/sdapi/v1`` router whose errors answer as A1111 does, and that error body.

A1111 answers a bad request with ``{"error", "detail", "body", "errors"}``; its clients read ``detail``.
Routes made by :func:`a1111_router` answer user errors (bad input, a busy queue, a failed job) this way;
401 and 413 (the middlewares) and 500 (bugs) keep the app's own shape.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from imagestudio.api.errors import ApiError, error_responses
from imagestudio.errors import QueueFull, UserError
from imagestudio.quoting import clip_message

PREFIX = "/sdapi/v1"
#: What A1111 calls the one sampler these flow-matching models use.
SAMPLER = "Euler"


#: Statuses answered in A1111's shape; 401 and 413 (the middlewares) and 500 (bugs) keep the app's.
_A1111_STATUSES = frozenset({400, 409, 429, 503, 504})


class A1111Error(BaseModel):
    """AUTOMATIC1111's error body."""

    error: str = Field(description="The kind of error (an exception class name in A1111).")
    detail: str = Field(description="One readable line saying what is wrong and what is allowed.")
    body: str = ""
    errors: str = Field(description="The same line again (A1111 puts the exception's text here).")


def a1111_router() -> APIRouter:
    """A router for ``/sdapi/v1`` whose routes answer errors in A1111's shape."""
    return APIRouter(
        prefix=PREFIX,
        tags=["AUTOMATIC1111-compatible"],
        route_class=A1111Route,
        responses=error_responses(401),
    )


def a1111_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route: A1111-shaped statuses, then the app's (401, 413, 500)."""
    described = {
        400: "Invalid request (a field, size, image, prompt or checkpoint name)",
        409: "The client went away; its job was cancelled",
        429: "Queue full; retry after the Retry-After header's seconds",
        503: "Model not on this machine, or the server is stopping",
        504: "The job did not finish within server.request_timeout_s and was cancelled",
        507: "Out of memory under every memory plan tried, or the outputs disk is full",
    }
    responses: dict[int | str, dict[str, Any]] = error_responses(401, 413)
    for status in statuses:
        responses[status] = {"model": A1111Error, "description": described[status]}
    return responses


def a1111_error(
    status: int, message: str, kind: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A1111's error body: ``error`` is the exception's class name, ``detail`` the message."""
    message = clip_message(message)
    body = {"error": kind, "detail": message, "body": "", "errors": message}
    return JSONResponse(body, status_code=status, headers=headers)


class A1111Route(APIRoute):
    """Routes whose errors (bad input, a busy queue, a failed job) answer in A1111's shape.

    Bugs still reach the app's handler (a generic 500, details only in the log).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except UserError as exc:
                if exc.http_status not in _A1111_STATUSES:
                    raise
                headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, QueueFull) else None
                return a1111_error(exc.http_status, exc.message, type(exc).__name__, headers)
            except ApiError as exc:
                if exc.status_code not in _A1111_STATUSES:
                    raise
                return a1111_error(exc.status_code, exc.message, type(exc).__name__, exc.headers)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
                message = f"{where}: {first.get('msg', 'invalid request')}"
                return a1111_error(400, message, "RequestValidationError")
            except StarletteHTTPException as exc:
                if exc.status_code not in _A1111_STATUSES:
                    raise
                return a1111_error(exc.status_code, str(exc.detail), "HTTPException", exc.headers)

        return route
