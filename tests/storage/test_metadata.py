from __future__ import annotations

from pathlib import Path

from PIL import Image

from imagestudio.storage.metadata import a1111_parameters, png_bytes, read_metadata, read_parameters

META = {
    "model": "tiny-z-image",
    "prompt": "кот в шляпе",
    "seed": 7,
    "width": 64,
    "height": 32,
    "steps": 2,
    "guidance_scale": 0.0,
    "app_version": "0.1.0",
}


def test_round_trip_keeps_cyrillic(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(Image.new("RGB", (64, 32), "red"), META))
    assert read_metadata(path) == META
    params = read_parameters(path)
    assert params is not None and params.startswith("кот в шляпе\nSteps: 2,")
    with Image.open(path) as image:
        assert image.size == (64, 32)
        assert image.getpixel((0, 0)) == (255, 0, 0)


def test_a1111_format() -> None:
    text = a1111_parameters({**META, "negative_prompt": "blurry"})
    lines = text.split("\n")
    assert lines[0] == "кот в шляпе"
    assert lines[1] == "Negative prompt: blurry"
    fields = dict(part.split(": ", 1) for part in lines[2].split(", "))
    assert fields["Seed"] == "7"
    assert fields["Size"] == "64x32"
    assert fields["Model"] == "tiny-z-image"
    assert fields["CFG scale"] == "0.0"


def test_foreign_png_has_no_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(path)
    assert read_metadata(path) == {}
    assert read_parameters(path) is None
