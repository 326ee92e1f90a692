"""Uploaded images at the HTTP edge: bytes in, checked :class:`InputImage` out, without stalling the server.

Decoding is :func:`imagestudio.storage.inputs.read_input_image`, the same as for the CLI and the UI (formats,
byte and pixel limits checked before any pixel is unpacked, EXIF orientation, transparency on white, one-line
errors with a code). What this module adds is *where* it runs: a large PNG takes seconds to inflate, so
decoding happens on a worker thread, never on the event loop, and at most ``server.max_concurrent_decodes``
images are decoded at once, so a burst of big uploads neither blocks ``/healthz`` nor exhausts memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from imagestudio.errors import InvalidImage
from imagestudio.storage.inputs import InputLimits, Purpose, read_input_image

if TYPE_CHECKING:
    from fastapi import Request

    from imagestudio.config import Settings
    from imagestudio.storage.inputs import InputImage


@dataclass(frozen=True)
class Upload:
    """One uploaded file before decoding: its bytes, the field it came in and the name the client gave it."""

    data: bytes
    field: str
    filename: str | None = None


class DecodeSlots:
    """Bounds concurrent upload decodes; one per app, kept on ``app.state`` (no module-level state).

    The semaphore is created on first use, inside the running event loop it belongs to.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore: asyncio.Semaphore | None = None

    def semaphore(self) -> asyncio.Semaphore:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.limit)
        return self._semaphore


def decode_slots(request: Request) -> DecodeSlots:
    slots = getattr(request.app.state, "decode_slots", None)
    if slots is None:
        settings = request.app.state.services.settings
        # Nothing awaits between the check and the assignment, so two requests cannot both create one.
        slots = request.app.state.decode_slots = DecodeSlots(settings.server.max_concurrent_decodes)
    return slots


def decode_upload_sync(upload: Upload, settings: Settings, *, purpose: Purpose = "image") -> InputImage:
    """Decode one upload with the upload limits (the stricter of ``inputs.*`` and ``server.*``)."""
    return read_input_image(
        upload.data,
        InputLimits.for_uploads(settings),
        name=upload.filename or upload.field,
        purpose=purpose,
        label=upload.field,
    )


async def decode_upload(
    request: Request, upload: Upload, settings: Settings, *, purpose: Purpose = "image"
) -> InputImage:
    """:func:`decode_upload_sync` on a worker thread, waiting for a free decode slot first."""
    async with decode_slots(request).semaphore():
        return await run_in_threadpool(decode_upload_sync, upload, settings, purpose=purpose)


async def decode_uploads(
    request: Request, uploads: list[Upload], settings: Settings, *, purpose: Purpose = "image"
) -> list[InputImage]:
    """Decode several uploads concurrently (within the bound), keeping their order; the first error wins."""
    decodes = (decode_upload(request, upload, settings, purpose=purpose) for upload in uploads)
    return list(await asyncio.gather(*decodes))


def base64_upload(text: str, *, field: str) -> Upload:
    """A base64 string (a ``data:image/...;base64,`` prefix is allowed) as an :class:`Upload`."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(
            f"{field} is not valid base64", param=field, code="image_unreadable", details={"name": field}
        ) from None
    return Upload(data=data, field=field)
