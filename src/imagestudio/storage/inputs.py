"""Input images (edit references, init images, masks, uploads): opened safely, or refused in one line.

Every image a user hands us goes through :func:`read_input_image`, from a path (CLI) or from bytes (HTTP
uploads), so the checks are the same everywhere:

* the byte size is checked before the file is read (and the read is capped, so a file that grows meanwhile
  cannot slip past);
* the pixel count is checked on the header before any pixel is decoded: ``Image.open`` is lazy, so a small
  file claiming a huge size (a decompression bomb) is refused without being unpacked. Pillow's own guard
  (``DecompressionBombError`` at twice its ``MAX_IMAGE_PIXELS``) is caught too. Our limit stays below
  Pillow's warning threshold (see ``inputs.max_input_pixels``), so every image Pillow would warn about is one
  we refuse anyway: :func:`silence_pillow_bomb_warning` lets an edge drop that duplicate warning;
* only the PNG, JPEG and WebP decoders are offered to Pillow (fewer parsers exposed to untrusted bytes);
* the file is verified and fully decoded, so truncated or corrupt files fail here, not inside a pipeline;
* EXIF orientation is applied (phone photos arrive sideways otherwise), and every mode becomes RGB
  (transparency composited on white) — or, for masks, greyscale (transparency composited on black, so
  transparent means "keep");
* the SHA-256 of the file's bytes is recorded, for the metadata of every image made from it.

Nothing here touches module-level state; Pillow's globals (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``)
are read, never changed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import InvalidImage

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings

log = logging.getLogger(__name__)

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
#: ``mask``: white = repaint (transparency = keep); ``alpha_mask``: OpenAI's convention, transparent = repaint
#: (a mask without any transparency is read like ``mask``).
Purpose = Literal["image", "mask", "alpha_mask"]

_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WIDE_INT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


@dataclass(frozen=True)
class InputLimits:
    """How large an input image may be, in bytes on disk and in decoded pixels."""

    max_bytes: int
    max_pixels: int
    #: The config keys that set the limits, named in refusals so the user knows what to change.
    bytes_key: str = "inputs.max_input_bytes"
    pixels_key: str = "inputs.max_input_pixels"

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        return cls(settings.inputs.max_input_bytes, settings.inputs.max_input_pixels)

    @classmethod
    def for_uploads(cls, settings: Settings) -> InputLimits:
        """Limits for HTTP uploads: the stricter of ``inputs.*`` and ``server.max_upload_pixels``."""
        limits = cls.from_settings(settings)
        if settings.server.max_upload_pixels < limits.max_pixels:
            upload_pixels = settings.server.max_upload_pixels
            return cls(limits.max_bytes, upload_pixels, pixels_key="server.max_upload_pixels")
        return limits


@dataclass(frozen=True, eq=False)
class InputImage:
    """A decoded, oriented, converted input image and where it came from."""

    #: What the user calls it (the file name, or the upload's name): used in messages and metadata.
    name: str
    #: RGB (``purpose="image"``) or L (``purpose="mask"``), EXIF orientation applied, fully loaded.
    image: Image.Image
    #: SHA-256 of the file's bytes, as given (before any decoding or conversion).
    sha256: str
    #: PNG, JPEG or WEBP.
    format: str
    #: The mode Pillow decoded (before conversion), e.g. ``P``, ``RGBA``, ``CMYK``.
    source_mode: str
    byte_size: int

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    def metadata(self) -> dict[str, Any]:
        """What a generated image's metadata records about this input."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "format": self.format,
        }


def silence_pillow_bomb_warning() -> None:
    """Drop Pillow's ``DecompressionBombWarning`` (process-wide; call it at an edge, e.g. a CLI command).

    Our pixel limit is below Pillow's warning threshold, so any image Pillow warns about is refused by
    :func:`read_input_image` with its own one-line message; the warning would only add a second line.
    """
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def read_input_image(
    source: Path | bytes,
    limits: InputLimits,
    *,
    name: str | None = None,
    purpose: Purpose = "image",
    label: str = "input image",
) -> InputImage:
    """Open ``source`` (a path, or the bytes of an upload) as a checked :class:`InputImage`.

    ``label`` starts every error message (``input image 'b.png' is empty``); ``name`` defaults to the
    file's name. Raises :class:`InvalidImage` (one line, naming the file) for anything we refuse.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        shown = name or "upload"
        data = bytes(source)
        if len(data) > limits.max_bytes:
            raise _too_many_bytes(label, shown, len(data), limits)
    else:
        path = Path(source)
        shown = name or path.name
        data = _read_capped(path, label, shown, limits)
    if not data:
        raise InvalidImage(
            f"{label} {shown!r} is empty (0 bytes)", param=label, code="image_empty", details={"name": shown}
        )
    image, image_format, mode = _decode(data, label, shown, limits)
    if purpose == "alpha_mask":
        converted = alpha_to_mask(image)
    else:
        converted = to_mask(image) if purpose == "mask" else to_rgb(image)
    return InputImage(
        name=shown,
        image=converted,
        sha256=hashlib.sha256(data).hexdigest(),
        format=image_format,
        source_mode=mode,
        byte_size=len(data),
    )


def _read_capped(path: Path, label: str, shown: str, limits: InputLimits) -> bytes:
    try:
        if path.is_dir():
            raise InvalidImage(f"{label} {shown!r} is a folder, not an image file", param=label)
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise _too_many_bytes(label, shown, size, limits)
        with path.open("rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError:
        raise InvalidImage(f"{label} {shown!r} does not exist ({path})", param=label) from None
    except OSError as exc:
        raise InvalidImage(f"{label} {shown!r} cannot be read ({exc.strerror or exc})", param=label) from None
    if len(data) > limits.max_bytes:  # it grew after the stat
        raise _too_many_bytes(label, shown, len(data), limits)
    return data


def _too_many_bytes(label: str, shown: str, size: int, limits: InputLimits) -> InvalidImage:
    return InvalidImage(
        f"{label} {shown!r} is {_human_bytes(size)}; the limit is {_human_bytes(limits.max_bytes)} "
        f"({limits.bytes_key})",
        param=label,
        code="image_too_large",
        details={"name": shown, "size": _human_bytes(size), "max": _human_bytes(limits.max_bytes)},
    )


def _human_bytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 1_000_000 else f"{size:,} bytes"


def _too_many_pixels(
    label: str, shown: str, pixels: int | None, size: str, limits: InputLimits
) -> InvalidImage:
    claimed = f"{pixels:,} pixels{size}" if pixels else "more pixels than Pillow allows"
    return InvalidImage(
        f"{label} {shown!r} has {claimed}; the limit is {limits.max_pixels:,} ({limits.pixels_key})",
        param=label,
        code="image_too_many_pixels",
        details={"name": shown, "max": f"{limits.max_pixels:,}"},
    )


def _decode(data: bytes, label: str, shown: str, limits: InputLimits) -> tuple[Image.Image, str, str]:
    """Header checks, then verify, then a full decode of the first frame; returns (image, format, mode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        header = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        found = _BOMB_PIXELS.search(str(exc))
        raise _too_many_pixels(label, shown, int(found.group(1)) if found else None, "", limits) from None
    except UnidentifiedImageError:
        raise InvalidImage(
            f"{label} {shown!r} is not an image (PNG, JPEG or WebP expected)",
            param=label,
            code="image_unreadable",
            details={"name": shown},
        ) from None
    except Exception as exc:  # noqa: BLE001 - header parsers raise many types on garbage
        raise _corrupt(label, shown, exc) from None
    width, height = header.size
    if width * height > limits.max_pixels:
        raise _too_many_pixels(label, shown, width * height, f" ({width}x{height})", limits)
    if width < 1 or height < 1:
        raise InvalidImage(
            f"{label} {shown!r} has no pixels ({width}x{height})",
            param=label,
            code="image_unreadable",
            details={"name": shown},
        )
    image_format = header.format or "?"
    try:
        # verify() checks what a lazy open skips (PNG chunk CRCs, for one) but leaves the image unusable,
        # hence the second open; load() then decodes every pixel, which is what finds truncation.
        header.verify()
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        image.load()
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, zlib errors…
        raise _corrupt(label, shown, exc) from None
    mode = image.mode
    return _orient(image, label, shown), image_format, mode


def _corrupt(label: str, shown: str, exc: BaseException) -> InvalidImage:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if "truncated" in detail.lower() or isinstance(exc, EOFError):
        return InvalidImage(
            f"{label} {shown!r} is truncated ({detail})",
            param=label,
            code="image_corrupt",
            details={"name": shown},
        )
    return InvalidImage(
        f"{label} {shown!r} is corrupt ({detail})", param=label, code="image_corrupt", details={"name": shown}
    )


def _orient(image: Image.Image, label: str, shown: str) -> Image.Image:
    """Apply the EXIF orientation tag; a broken EXIF block costs the rotation, not the image."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF raises assorted errors
        log.warning("%s %r: EXIF orientation ignored (%s)", label, shown, exc)
        return image


def _with_alpha(image: Image.Image) -> Image.Image | None:
    """The image as RGBA if it has any transparency (alpha channel, palette or tRNS key), else None."""
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return image.convert("RGBA")
    return None


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) greyscale to 8-bit by scaling; Pillow's own convert clips at 255."""
    import numpy as np
    from PIL import Image

    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if array.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any decoded mode as RGB; transparency is composited on white (what a viewer shows)."""
    from PIL import Image

    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    if image.mode in _WIDE_INT_MODES:
        return _eight_bit(image).convert("RGB")
    rgba = _with_alpha(image)
    if rgba is not None:
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return image.convert("RGB")


def to_mask(image: Image.Image) -> Image.Image:
    """Any decoded mode as an 8-bit greyscale mask; transparency is composited on black (= keep)."""
    from PIL import Image

    if image.mode in _WIDE_INT_MODES:
        return _eight_bit(image)
    rgba = _with_alpha(image)
    if rgba is not None:
        canvas = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("L")
    return image.convert("L")


def alpha_to_mask(image: Image.Image) -> Image.Image:
    """OpenAI's mask convention (fully transparent = edit) as an 8-bit mask, white = repaint.

    A mask without transparency is read as the studio's own (white = repaint), like :func:`to_mask`.
    """
    from PIL import ImageOps

    rgba = _with_alpha(image)
    if rgba is None:
        return to_mask(image)
    return ImageOps.invert(rgba.getchannel("A"))
