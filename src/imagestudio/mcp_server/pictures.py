"""Pictures an assistant names in a tool call, opened as checked :class:`InputImage` objects.

Models cannot send a large base64 string in a tool call (a 50 kB picture is beyond many output budgets), so a
picture may be named as well as sent: a History image id, a URL of one of this studio's images, or — when
the server runs on the user's machine over stdio — a file path or ``file://`` URI. Over HTTP a path would
let a remote caller read files on the server, so only ids, this server's URLs and data URLs are taken
there. A URL is never fetched: its ``/api/images/ID`` path names a History image, looked up locally.
Whatever the source, decoding is the shared :func:`~imagestudio.storage.inputs.read_input_image` with the
same limits as uploads.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from imagestudio.errors import InvalidImage
from imagestudio.mcp_server.arguments import IMAGE_ID_PATTERN
from imagestudio.storage.inputs import InputLimits, Purpose, read_input_image

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.history.store import HistoryStore
    from imagestudio.storage.inputs import InputImage

_IMAGE_PATH = re.compile(r"/api/images/([A-Za-z0-9_-]{1,64})/?$")
_ID = re.compile(IMAGE_ID_PATTERN)


def open_picture(
    reference: str,
    *,
    field: str,
    settings: Settings,
    history: HistoryStore,
    local_files: bool,
    purpose: Purpose = "image",
) -> InputImage:
    """Open the picture ``reference`` names; one-line :class:`InvalidImage` when it cannot be used."""
    limits = InputLimits.for_uploads(settings)
    text = reference.strip()
    if text.startswith("data:"):
        return read_input_image(
            _data_url_bytes(text, field), limits, name=field, purpose=purpose, label=field
        )
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https"):
        match = _IMAGE_PATH.search(urlsplit(text).path)
        if match is None:
            raise InvalidImage(
                f"{field}: {text[:80]!r} is not an image of this studio (its URLs end in /api/images/ID); "
                "send the picture as a data: URL instead",
                param=field,
                code="image_unreadable",
                details={"name": field},
            )
        return _history_picture(match.group(1), field, history, limits, purpose)
    if scheme == "file" or (not scheme and not _ID.match(text)):
        if not local_files:
            raise InvalidImage(
                f"{field}: file paths are read only by the stdio server on the user's machine; over HTTP "
                "send a History id, this server's image URL or a data: URL",
                param=field,
                code="image_unreadable",
                details={"name": field},
            )
        path = Path(unquote(urlsplit(text).path)) if scheme == "file" else Path(text).expanduser()
        return read_input_image(path, limits, purpose=purpose, label=field)
    if scheme:
        raise InvalidImage(
            f"{field}: {scheme}: URLs are not taken; send a History id, a file path or a data: URL",
            param=field,
            code="image_unreadable",
            details={"name": field},
        )
    # A bare word that looks like an id: a History image, unless a file of that name is meant.
    if local_files and not history.get_image(text) and Path(text).is_file():
        return read_input_image(Path(text), limits, purpose=purpose, label=field)
    return _history_picture(text, field, history, limits, purpose)


def _history_picture(
    image_id: str, field: str, history: HistoryStore, limits: InputLimits, purpose: Purpose
) -> InputImage:
    path = history.image_file(image_id)
    if path is None:
        raise InvalidImage(
            f"{field}: no image {image_id!r} in this studio's History (search_history lists them)",
            param=field,
            code="image_not_found",
            details={"name": field},
        )
    return read_input_image(path, limits, name=f"{image_id}.png", purpose=purpose, label=field)


def _data_url_bytes(text: str, field: str) -> bytes:
    header, _, payload = text.partition(",")
    if not header.endswith(";base64"):
        raise InvalidImage(
            f"{field}: a data: URL must be base64 (data:image/png;base64,…)",
            param=field,
            code="image_unreadable",
            details={"name": field},
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(
            f"{field} is not valid base64", param=field, code="image_unreadable", details={"name": field}
        ) from None
