"""Saved images in the format a client asked for: PNG as stored, or JPEG / WebP with the same parameters.

History keeps every image as a PNG with its metadata chunks (see :mod:`imagestudio.storage.metadata`);
a client that wants JPEG or WebP gets a conversion made for the answer. Those formats have no text
chunks, so the AUTOMATIC1111-style ``parameters`` text goes where AUTOMATIC1111 itself puts it: the EXIF
``UserComment`` (tag 0x9286 in the Exif IFD), as ``UNICODE\\0`` followed by UTF-16 big-endian text — what
A1111's piexif call writes and what readers such as sd-parsers and Civitai expect.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from imagestudio.storage.metadata import A1111_KEY

if TYPE_CHECKING:
    from PIL import Image

OutputFormat = Literal["png", "jpeg", "webp"]

#: Quality when the client gives no ``output_compression`` (OpenAI's scale: 100 = best).
DEFAULT_QUALITY = 90
EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
_UNICODE_PREFIX = b"UNICODE\x00"

MEDIA_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def user_comment(text: str) -> bytes:
    """EXIF UserComment bytes for ``text``: the 8-byte character-code prefix, then UTF-16 big-endian."""
    return _UNICODE_PREFIX + text.encode("utf-16-be")


def read_user_comment(image: Image.Image) -> str | None:
    """The UserComment text of a JPEG/WebP, if it has one this module (or AUTOMATIC1111) wrote."""
    raw = image.getexif().get_ifd(EXIF_IFD).get(USER_COMMENT)
    if not isinstance(raw, bytes) or not raw.startswith(_UNICODE_PREFIX):
        return None
    return raw[len(_UNICODE_PREFIX) :].decode("utf-16-be")


def encode_image(
    image: Image.Image,
    output_format: OutputFormat,
    *,
    parameters: str | None = None,
    compression: int | None = None,
) -> bytes:
    """``image`` as JPEG or WebP bytes with ``parameters`` in EXIF UserComment, or as a plain PNG."""
    from PIL import Image as PILImage
    from PIL.PngImagePlugin import PngInfo

    buffer = io.BytesIO()
    rgb = image.convert("RGB")
    if output_format == "png":
        info = PngInfo()
        if parameters:
            info.add_text(A1111_KEY, parameters)
        rgb.save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()
    exif = PILImage.Exif()
    if parameters:
        exif.get_ifd(EXIF_IFD)[USER_COMMENT] = user_comment(parameters)
    quality = DEFAULT_QUALITY if compression is None else compression
    if output_format == "jpeg":
        rgb.save(buffer, format="JPEG", quality=max(1, quality), exif=exif.tobytes())
    elif output_format == "webp":
        rgb.save(buffer, format="WEBP", quality=quality, exif=exif.tobytes())
    else:
        raise ValueError(f"unknown output format {output_format!r}")
    return buffer.getvalue()


def encode_saved(path: Path, output_format: OutputFormat, *, compression: int | None = None) -> bytes:
    """A saved PNG in ``output_format``: PNG unchanged (every metadata chunk kept), else converted with its
    ``parameters`` text carried over into EXIF."""
    from PIL import Image as PILImage

    if output_format == "png":
        return path.read_bytes()
    with PILImage.open(path) as image:
        image.load()
        parameters = getattr(image, "text", {}).get(A1111_KEY)
        return encode_image(image, output_format, parameters=parameters, compression=compression)
