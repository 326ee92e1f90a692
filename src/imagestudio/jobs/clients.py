"""Which client a job or a stream belongs to, for the per-client limits.

The HTTP layer tags each request with the caller's address (:class:`imagestudio.api.clients.ClientTag`);
the queue reads the tag when a job is submitted from that request's context. A
:class:`contextvars.ContextVar` is used rather than a parameter threaded through every route because it
follows the request into the worker threads the routes submit from (Starlette copies the context), and
it holds no shared state: each request sees only its own value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CLIENT: ContextVar[str | None] = ContextVar("imagestudio_client", default=None)


def current_client() -> str | None:
    """The address of the client whose request is being served here, or None outside a request."""
    return _CLIENT.get()


@contextmanager
def serving(client: str | None) -> Iterator[None]:
    """Run the block as serving ``client``."""
    token = _CLIENT.set(client)
    try:
        yield
    finally:
        _CLIENT.reset(token)
