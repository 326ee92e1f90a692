"""The pictures an edit, img2img or controlled job started from, kept next to its results for History.

Each input is stored once, as a PNG named by the SHA-256 of the file the user gave
(``<outputs>/.inputs/<sha256>.png``) — the same hash the result's metadata records — so ten edits of one
photo keep one copy, and a result's metadata is enough to find its inputs. A kept input is deleted
when the last history row whose metadata names it is deleted.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imagestudio.storage.files import write_new_file

log = logging.getLogger(__name__)

INPUTS_DIR = ".inputs"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def request_inputs(request: Any) -> list[Any]:
    """The InputImage objects of a request: an edit's pictures, an img2img start picture and mask, the
    control picture."""
    found = list(getattr(request, "images", None) or ())
    for name in ("init_image", "mask"):
        image = getattr(request, name, None)
        if image is not None:
            found.append(image)
    control = getattr(request, "control", None)
    if control is not None:
        found.append(control.image)
    return [image for image in found if hasattr(image, "sha256") and hasattr(image, "image")]


def input_shas(metadata: dict[str, Any]) -> list[str]:
    """The SHA-256 of every input a result's metadata names, in order (pictures, start picture, mask,
    control picture)."""
    entries = list(metadata.get("input_images") or [])
    entries += [metadata.get(name) for name in ("init_image", "mask")]
    control = metadata.get("control")
    entries.append(control.get("image") if isinstance(control, dict) else None)
    shas = []
    for entry in entries:
        sha = entry.get("sha256") if isinstance(entry, dict) else None
        if isinstance(sha, str) and _SHA256.match(sha) and sha not in shas:
            shas.append(sha)
    return shas


def kept_input_path(outputs_dir: Path, sha256: str) -> Path | None:
    """Where the input with this hash is kept, if it is (never a path outside the inputs folder)."""
    if not _SHA256.match(sha256):
        return None
    path = outputs_dir / INPUTS_DIR / f"{sha256}.png"
    return path if path.is_file() else None


def keep_inputs(outputs_dir: Path, request: Any) -> list[Path]:
    """Write the request's input pictures that are not kept yet; returns every kept file's path."""
    folder = outputs_dir / INPUTS_DIR
    kept = []
    for item in request_inputs(request):
        final = folder / f"{item.sha256}.png"
        if not final.is_file():
            buffer = io.BytesIO()
            item.image.save(buffer, format="PNG")
            written = write_new_file(folder, item.sha256, ".png", buffer.getvalue())
            if written != final:
                # Another job kept the same picture meanwhile: theirs is the same pixels.
                written.unlink(missing_ok=True)
        kept.append(final)
    return kept


def forget_inputs(outputs_dir: Path, shas: Iterable[str], still_used: Any) -> None:
    """Delete the kept inputs among ``shas`` that ``still_used(sha)`` says no history row names."""
    for sha in shas:
        path = kept_input_path(outputs_dir, sha)
        if path is None or still_used(sha):
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("a kept input picture could not be deleted: %s", exc)
