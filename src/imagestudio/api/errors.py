"""Every error the API returns has OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

User errors (:class:`~imagestudio.errors.UserError` and subclasses) map generically through their
``http_status`` and ``error_type``; framework errors (unknown route, wrong method, bad JSON, schema
violations) are rewritten into the same shape; anything else is a bug: logged with its traceback,
answered with a generic 500 that never contains one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from imagestudio.errors import ImageStudioError, QueueFull, ServiceStopping, UserError
from imagestudio.quoting import clip_message

log = logging.getLogger(__name__)

#: OpenAI's error ``type`` for each status we answer with.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout",
    507: "insufficient_storage",
}


#: Parts of a validation error's location that are not field names: where FastAPI looked, and the
#: tags of the job body union (``kind``).
_LOCATION_PARTS = frozenset({"body", "query", "path", "header", "generate", "edit"})


class ErrorBody(BaseModel):
    message: str = Field(description="One readable line saying what is wrong and what is allowed.")
    type: str = Field(description="Error category, as in OpenAI's API (invalid_request_error, …).")
    param: str | None = Field(None, description="The request field at fault, if any.")
    code: str | None = Field(None, description="A stable machine-readable code, if any.")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx response."""

    error: ErrorBody


_DESCRIPTIONS = {
    400: "Invalid request (bad field, size, image, prompt …)",
    401: "Missing or wrong API key",
    404: "Unknown job, image, model or route",
    409: "The job was cancelled",
    413: "Request body larger than server.max_upload_mb",
    429: "Queue full; retry after the Retry-After header's seconds",
    500: "Internal error (details are in the server log only)",
    503: "Model not on this machine, or the server is stopping",
    504: "The job did not finish within server.request_timeout_s and was cancelled",
    507: "Out of memory on the device under every memory plan tried (type insufficient_memory), or the "
    "outputs disk is full (type insufficient_storage)",
}


#: One Server-Sent Event as OpenAPI before 3.2 describes an event stream: its ``schema`` is each event's
#: fields (``event`` and ``data``, the JSON text of the event), not the stream's bytes.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"],
}


def sse_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for an answer sent as Server-Sent Events."""
    return {"description": description, "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses (500 is always added)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 500}):
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying",
                    "schema": {"type": "integer"},
                }
            }
        responses[status] = entry
    return responses


class ApiError(StarletteHTTPException):
    """An HTTP error raised by our own edges, with OpenAI's fields.

    A Starlette HTTPException subclass on purpose: FastAPI re-raises those untouched when they occur
    while it reads a request body (a generic exception there would become "error parsing the body").
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.message = message
        self.type = type or _TYPES.get(status, "invalid_request_error")
        self.param = param
        self.code = code


#: Statuses a retry of the same request cannot fix. OpenAI's SDKs retry 408/409/429/5xx on their own
#: unless the answer says ``x-should-retry: false``; 429 (queue full) and a stopping server stay retryable.
_FINAL_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 413, 422, 500, 504, 507})


def error_json(
    status: int,
    message: str,
    *,
    type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    retryable: bool | None = None,
) -> JSONResponse:
    if retryable is None:
        retryable = status not in _FINAL_STATUSES
    if not retryable:
        headers = {**(headers or {}), "x-should-retry": "false"}
    body = {
        "error": {
            # One line of bounded length whatever raised it: the CLI's rule, for every client.
            "message": clip_message(message),
            "type": type or _TYPES.get(status, "invalid_request_error"),
            "param": param,
            "code": code,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, ApiError):
        return error_json(
            exc.status_code, exc.message, type=exc.type, param=exc.param, code=exc.code, headers=exc.headers
        )
    status = exc.status_code
    if status == 404:
        message = f"no route {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    elif isinstance(exc.detail, str) and exc.detail:
        message = exc.detail
    else:
        message = _phrase(status)
    return error_json(status, message, code=_code(status), headers=getattr(exc, "headers", None))


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    # ("body", "size") → "size"; ("body", "edit", "images", 0) → "images.0": the field as the client
    # named it, without where FastAPI found it or which member of a tagged union matched.
    loc = [str(part) for part in first.get("loc", ()) if part not in _LOCATION_PARTS]
    param = ".".join(loc) or None
    message = f"{param}: {first.get('msg', 'invalid')}" if param else str(first.get("msg", "invalid"))
    if first.get("type") == "json_invalid":
        message, param = "the request body is not valid JSON", None
    elif "Expected UploadFile" in str(first.get("msg", "")):
        message = f"{param} must be a file (a multipart part with a filename)"
    more = len(problems) - 1
    if more > 0:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return error_json(400, message.replace("\n", " "), param=param, code=str(first.get("type") or "invalid"))


def _user_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UserError)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, QueueFull) else None
    # A missing model stays missing however often the request is sent; a stopping server may come back.
    retryable = isinstance(exc, (QueueFull, ServiceStopping))
    return error_json(
        exc.http_status,
        exc.message,
        type=exc.error_type,
        param=exc.param,
        code=exc.code,
        headers=headers,
        retryable=retryable,
    )


def _deliberate_error(request: Request, exc: Exception) -> JSONResponse:
    # Explained failures (NaN/black output …): the message is safe and useful; no traceback.
    log.warning("%s %s failed: %s", request.method, request.url.path, exc)
    return error_json(500, str(exc), code="server_error")


def _bug(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_json(500, "internal server error; the server log has the details", code="server_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(ImageStudioError, _deliberate_error)
    app.add_exception_handler(Exception, _bug)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _code(status: int) -> str | None:
    return {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(status)
