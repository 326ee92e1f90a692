"""Image sizes offered on the Generate page.

The squares are the original documents' sizes; the aspect buckets are the usual photo and screen shapes
near one megapixel (what Z-Image-Turbo is trained around). Every side is a multiple of 16, which both
models require. Anything else is a custom size, validated by the request like any other input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizePreset:
    width: int
    height: int
    aspect: str

    @property
    def value(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def label(self) -> str:
        return f"{self.width} × {self.height}  ·  {self.aspect}"


SIZE_PRESETS: tuple[SizePreset, ...] = (
    SizePreset(1024, 1024, "1:1"),
    SizePreset(768, 768, "1:1"),
    SizePreset(512, 512, "1:1"),
    SizePreset(384, 384, "1:1"),
    SizePreset(1152, 896, "9:7"),
    SizePreset(896, 1152, "7:9"),
    SizePreset(1024, 768, "4:3"),
    SizePreset(768, 1024, "3:4"),
    SizePreset(1216, 832, "3:2"),
    SizePreset(832, 1216, "2:3"),
    SizePreset(1280, 720, "16:9"),
    SizePreset(720, 1280, "9:16"),
    SizePreset(1344, 768, "7:4"),
    SizePreset(768, 1344, "4:7"),
    SizePreset(1536, 640, "12:5"),
    SizePreset(640, 1536, "5:12"),
)

CUSTOM_SIZE = "custom"
#: img2img/inpaint: the size of the starting picture (outside img2img: the configured default size).
SOURCE_SIZE = "source"
DEFAULT_SIZE = SIZE_PRESETS[0].value


def size_of(
    choice: str, custom_width: float | None, custom_height: float | None
) -> tuple[int | None, int | None]:
    """(width, height) for a dropdown choice; the custom fields as typed (None when left empty)."""
    if choice == CUSTOM_SIZE:
        return _int_or_none(custom_width), _int_or_none(custom_height)
    if choice == SOURCE_SIZE:
        return None, None
    for preset in SIZE_PRESETS:
        if preset.value == choice:
            return preset.width, preset.height
    raise ValueError(f"unknown size choice {choice!r}")


def choice_for(width: int | None, height: int | None) -> str:
    """The dropdown entry showing ``width``×``height`` (a preset when one matches, else custom)."""
    for preset in SIZE_PRESETS:
        if (preset.width, preset.height) == (width, height):
            return preset.value
    return CUSTOM_SIZE


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else round(value)
