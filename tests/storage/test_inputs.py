"""Input images: every format and mode we accept, and every broken file refused in one line naming it."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.errors import InvalidImage
from imagestudio.storage.inputs import InputLimits, read_input_image

LIMITS = InputLimits(max_bytes=5_000_000, max_pixels=4_000_000)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def halves(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue: orientation mistakes show."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(array)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header claims ``width`` x ``height`` (a decompression bomb's first step)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


def refused(source: Path | bytes, **kwargs: object) -> str:
    with pytest.raises(InvalidImage) as info:
        read_input_image(source, kwargs.pop("limits", LIMITS), **kwargs)  # type: ignore[arg-type]
    message = info.value.message
    assert "\n" not in message
    return message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_decode_to_rgb_with_the_files_hash(tmp_path: Path, fmt: str) -> None:
    data = encode(halves(), fmt, **({"quality": 95} if fmt != "PNG" else {}))
    path = write(tmp_path, f"x.{fmt.lower()}", data)
    item = read_input_image(path, LIMITS)
    assert (item.name, item.format, item.image.mode, item.image.size) == (path.name, fmt, "RGB", (40, 20))
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert item.byte_size == len(data)
    red, blue = item.image.getpixel((5, 10)), item.image.getpixel((35, 10))
    assert red[0] > 200 and red[2] < 60 and blue[2] > 200 and blue[0] < 60
    assert item.metadata() == {
        "name": path.name,
        "sha256": item.sha256,
        "width": 40,
        "height": 20,
        "format": fmt,
    }


def test_bytes_source_is_the_same_as_a_path(tmp_path: Path) -> None:
    data = encode(halves(), "PNG")
    from_bytes = read_input_image(data, LIMITS, name="upload.png")
    from_path = read_input_image(write(tmp_path, "upload.png", data), LIMITS)
    assert from_bytes.name == "upload.png"
    assert from_bytes.sha256 == from_path.sha256
    assert np.array_equal(np.asarray(from_bytes.image), np.asarray(from_path.image))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone held upright
    path = write(tmp_path, "phone.jpg", encode(halves(), "JPEG", quality=95, exif=exif.tobytes()))
    image = read_input_image(path, LIMITS).image
    assert image.size == (20, 40)
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60, top  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    array = np.zeros((4, 4, 4), dtype=np.uint8)
    array[:, :2] = (255, 0, 0, 255)  # opaque red
    array[:, 2:] = (0, 0, 0, 0)  # fully transparent
    item = read_input_image(write(tmp_path, "a.png", encode(Image.fromarray(array), "PNG")), LIMITS)
    assert (item.source_mode, item.image.mode) == ("RGBA", "RGB")
    assert item.image.getpixel((0, 0)) == (255, 0, 0)
    assert item.image.getpixel((3, 3)) == (255, 255, 255)


def test_palette_with_transparency_and_without(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 6))
    palette.putpixel((0, 0), 0)
    plain = read_input_image(write(tmp_path, "p.png", encode(palette, "PNG")), LIMITS)
    assert (plain.source_mode, plain.image.mode) == ("P", "RGB")
    assert plain.image.getpixel((1, 1)) == (0, 200, 0)
    assert plain.image.getpixel((0, 0)) == (0, 0, 0)
    see_through = read_input_image(write(tmp_path, "t.png", encode(palette, "PNG", transparency=0)), LIMITS)
    assert see_through.image.getpixel((0, 0)) == (255, 255, 255)  # transparent index → white
    assert see_through.image.getpixel((1, 1)) == (0, 200, 0)


def test_greyscale_8_and_16_bit(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((4, 4), 100, dtype=np.uint8))
    item = read_input_image(write(tmp_path, "g.png", encode(grey, "PNG")), LIMITS)
    assert (item.source_mode, item.image.getpixel((0, 0))) == ("L", (100, 100, 100))
    deep = Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16))  # 32896 / 257 = 128
    item = read_input_image(write(tmp_path, "g16.png", encode(deep, "PNG")), LIMITS)
    assert item.source_mode.startswith("I")
    assert item.image.getpixel((0, 0)) == (128, 128, 128)  # scaled, not clipped to 255


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    item = read_input_image(write(tmp_path, "c.jpg", encode(cmyk, "JPEG", quality=95)), LIMITS)
    assert (item.source_mode, item.image.mode) == ("CMYK", "RGB")
    red = item.image.getpixel((4, 4))
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_masks_are_greyscale_with_transparency_on_black(tmp_path: Path) -> None:
    array = np.zeros((4, 4, 4), dtype=np.uint8)
    array[:, :2] = (255, 255, 255, 255)  # white stroke
    item = read_input_image(
        write(tmp_path, "m.png", encode(Image.fromarray(array), "PNG")), LIMITS, purpose="mask", label="mask"
    )
    assert item.image.mode == "L"
    assert (item.image.getpixel((0, 0)), item.image.getpixel((3, 0))) == (255, 0)


def test_zero_byte_file(tmp_path: Path) -> None:
    assert refused(write(tmp_path, "z.png", b"")) == "input image 'z.png' is empty (0 bytes)"


def test_text_file_named_png(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "b.png", b"hello, I am text\n"))
    assert message == "input image 'b.png' is not an image (PNG, JPEG or WebP expected)"


def test_other_image_formats_are_not_offered_to_pillow(tmp_path: Path) -> None:
    assert "is not an image" in refused(write(tmp_path, "x.png", encode(halves(), "GIF")))


def test_truncated_png_and_jpeg(tmp_path: Path) -> None:
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    for name, fmt in (("t.png", "PNG"), ("t.jpg", "JPEG")):
        data = encode(big, fmt)
        message = refused(write(tmp_path, name, data[: len(data) // 2]), label="init image")
        assert message.startswith(f"init image '{name}' is truncated"), message


def test_corrupt_png_checksum(tmp_path: Path) -> None:
    data = bytearray(encode(halves(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF  # flip a byte of compressed pixels: the chunk's CRC no longer matches
    message = refused(write(tmp_path, "crc.png", bytes(data)))
    assert message.startswith("input image 'crc.png' is ") and (
        "corrupt" in message or "truncated" in message
    )


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    data = png_claiming(20_000, 10_000)
    assert len(data) < 100
    message = refused(write(tmp_path, "bomb.png", data))
    assert message.startswith("input image 'bomb.png' has 200,000,000 pixels; the limit is 4,000,000")


def test_pixel_limit_below_pillows_own(tmp_path: Path) -> None:
    message = refused(write(tmp_path, "wide.png", png_claiming(3000, 2000)))
    assert message == (
        "input image 'wide.png' has 6,000,000 pixels (3000x2000); "
        "the limit is 4,000,000 (inputs.max_input_pixels)"
    )


def test_byte_limit_is_checked_before_reading(tmp_path: Path) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    data = encode(noise, "PNG")
    path = write(tmp_path, "big.png", data)
    small = InputLimits(max_bytes=1000, max_pixels=LIMITS.max_pixels)
    expected = (
        f"input image 'big.png' is {len(data):,} bytes; the limit is 1,000 bytes (inputs.max_input_bytes)"
    )
    assert refused(path, limits=small) == expected
    assert refused(data, limits=small, name="big.png") == expected


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert refused(tmp_path / "nope.png").startswith("input image 'nope.png' does not exist")
    assert refused(tmp_path) == f"input image '{tmp_path.name}' is a folder, not an image file"


def test_multi_picture_jpeg_and_animated_webp_give_their_first_frame(tmp_path: Path) -> None:
    red, green = Image.new("RGB", (32, 16), (255, 0, 0)), Image.new("RGB", (32, 16), (0, 255, 0))
    for name, fmt in (("phone.jpg", "MPO"), ("anim.webp", "WEBP")):
        data = encode(red, fmt, save_all=True, append_images=[green])
        item = read_input_image(write(tmp_path, name, data), LIMITS)
        pixel = item.image.getpixel((4, 4))
        assert item.image.size == (32, 16) and pixel[0] > 240 and pixel[1] < 16, (name, pixel)
