"""An AUTOMATIC1111-compatible API under ``/sdapi/v1``: the tools that drive A1111 work unchanged.

shape.py: A1111's error body and the router that answers in it; state.py: the selected checkpoint and the
live preview; generation.py: ``txt2img``, ``img2img`` and ``options``; status.py: the listings,
``progress``, ``interrupt`` and ``memory``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from imagestudio.services import Services


def install(app: FastAPI, services: Services) -> None:
    """Add the routes and their state to ``app``; the preview follows every job of ``services``."""
    from imagestudio.api.a1111 import generation, status
    from imagestudio.api.a1111.state import OPTIONS_FILE, SdapiState

    state = SdapiState.load(services.settings.history_db.parent / OPTIONS_FILE)
    app.state.sdapi = state
    services.queue.subscribe(None, state.on_event)
    app.include_router(generation.router)
    app.include_router(status.router)
