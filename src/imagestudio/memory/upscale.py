"""Memory of an upscale: how big a tile may be on this device, and what the whole job holds.

An ESRGAN-family network keeps a few feature maps of its width per input pixel alive at once, and its
output is ``scale²`` times the tile; the whole image never passes through the network in one piece, so
a job's accelerator memory is bounded by the tile, whatever the image's size. The assembled result lives
in system RAM (three float32 planes plus one of weights at the output size).

The constants are estimates from the architectures' shapes (RRDBNet: 64 features, 23 blocks, up to five
maps of a dense block alive at once), not measurements on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Tile sides tried, largest first (input pixels); multiples of 8 suit every ESRGAN variant.
TILE_SIDES = (1024, 768, 512, 384, 256, 192, 128)
#: Overlap between neighbouring tiles (input pixels), blended linearly so no seam shows.
DEFAULT_OVERLAP = 32
#: Feature maps alive per input pixel (RRDBNet's dense blocks: 64 + 4 x 32 channels) x a safety factor.
FEATURE_CHANNELS = 192 * 2
#: Headroom kept free beside a tile (allocator fragmentation, the resident diffusion model's spikes).
HEADROOM_FRACTION = 0.5


@dataclass(frozen=True)
class UpscalePlan:
    """The tile side and overlap a job runs with, and the bytes they are predicted to need."""

    tile: int
    overlap: int
    tile_bytes: int
    #: System RAM the assembled output takes (float32 RGB + weights at the output size).
    output_bytes: int

    def describe(self) -> str:
        return (
            f"tiles of {self.tile}px, overlap {self.overlap}px, ~{self.tile_bytes / 2**20:.0f} MiB per tile"
        )


def tile_bytes(side: int, scale: int, dtype_bytes: int) -> int:
    """Accelerator bytes one ``side`` x ``side`` tile is predicted to need at network scale ``scale``."""
    pixels = side * side
    features = pixels * FEATURE_CHANNELS * dtype_bytes
    # the output tile and the float32 copy it is turned into
    output = pixels * scale * scale * 3 * (dtype_bytes + 4)
    return features + output


def output_bytes(width: int, height: int) -> int:
    """RAM of the blended output canvas: RGB float32 and one float32 weight plane."""
    return width * height * 4 * 4


def plan_upscale(
    *,
    free_bytes: int | None,
    scale: int,
    dtype_bytes: int,
    out_width: int,
    out_height: int,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
) -> UpscalePlan:
    """The largest tile that fits in half of ``free_bytes`` (None: unknown, the smallest safe default).

    ``tile`` forces a side (the ``upscale.tile_px`` setting, or a test wanting many tiles).
    """
    if tile is None:
        budget = None if free_bytes is None else int(free_bytes * HEADROOM_FRACTION)
        fitting = [
            side
            for side in TILE_SIDES
            if budget is not None and tile_bytes(side, scale, dtype_bytes) <= budget
        ]
        tile = fitting[0] if fitting else (512 if budget is None else TILE_SIDES[-1])
    overlap = min(overlap, tile // 4)
    return UpscalePlan(
        tile, overlap, tile_bytes(tile, scale, dtype_bytes), output_bytes(out_width, out_height)
    )
