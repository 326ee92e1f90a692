"""Turning uploaded bytes into images, safely.

The byte limit is enforced by the body-size middleware before anything is parsed. Here: only PNG,
JPEG and WebP are accepted; the pixel count is read from the header and checked *before* the
pixels are decoded (a 100 kB PNG can claim 50,000 × 50,000 pixels); the image is then decoded
fully, so a truncated or corrupt file fails here with a 400 rather than later inside a pipeline.
"""

from __future__ import annotations

import base64
import binascii
import io

from imagestudio.errors import InvalidImage
from imagestudio.storage.inputs import InputImage

#: PIL format names we accept (MPO is how PIL names many phone cameras' JPEGs).
ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "MPO": "JPEG", "WEBP": "WebP"}


def decode_image(data: bytes, *, field: str, max_pixels: int, keep_alpha: bool = False) -> InputImage:
    """Decode an uploaded PNG/JPEG/WebP into an RGB (or RGBA) input image, or raise a one-line InvalidImage.

    The result carries the upload's SHA-256 like a file read from disk, so edits made over HTTP record
    their inputs in the metadata the same way as those made on the CLI.
    """
    import hashlib

    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InvalidImage(f"{field} is empty", param=field)
    try:
        # Image.open reads only the header: the size is known before any pixel is decoded.
        with Image.open(io.BytesIO(data)) as image:
            kind = ALLOWED_FORMATS.get(image.format or "")
            if kind is None:
                raise InvalidImage(
                    f"{field} is a {image.format or 'unknown'} file; send PNG, JPEG or WebP", param=field
                )
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImage(
                    f"{field} is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,} "
                    "(server.max_upload_pixels)",
                    param=field,
                )
            image.load()
            # Phones store rotation in EXIF; the model must see the picture the way the user does.
            image = ImageOps.exif_transpose(image)
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            mode = "RGBA" if keep_alpha and has_alpha else "RGB"
            source_mode = image.mode
            return InputImage(
                name=field,
                image=image.convert(mode),
                sha256=hashlib.sha256(data).hexdigest(),
                format=kind,
                source_mode=source_mode,
                byte_size=len(data),
            )
    except InvalidImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InvalidImage(f"{field} is not a readable image ({_reason(exc)})", param=field) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"{field} is corrupt or truncated ({_reason(exc)})", param=field) from None


def decode_base64_image(text: str, *, field: str, max_pixels: int, keep_alpha: bool = False) -> InputImage:
    """Like :func:`decode_image` for a base64 string (a ``data:image/...;base64,`` prefix is allowed)."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(f"{field} is not valid base64", param=field) from None
    return decode_image(data, field=field, max_pixels=max_pixels, keep_alpha=keep_alpha)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
