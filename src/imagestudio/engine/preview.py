"""A cheap live preview of an image while it is being denoised.

Decoding with the real VAE at every step would cost about as much as a step. Instead each latent pixel
(16 channels) is projected to RGB by a fixed 16×3 matrix plus a bias, fitted by others against the real
VAE decoder; the result is 1/8 of the image's resolution and blurry but shows composition and colour.

The factors are the published ``latent_rgb_factors`` / ``latent_rgb_factors_bias`` of ComfyUI
(``comfy/latent_formats.py``, classes ``Flux`` and ``Wan21``), which apply to latents in the normalised
space the samplers work in — the same space the diffusers pipelines hold in ``latents`` during sampling:

* Z-Image uses the FLUX VAE; ``ZImagePipeline`` keeps ``(latents - shift) * scale`` as
  ``(batch, 16, H/8, W/8)`` (the transformer patchifies internally, the pipeline's latents are spatial).
* Qwen-Image-Edit uses a Wan-2.1-style VAE; ``QwenImageEditPlusPipeline`` keeps ``(latents - mean) / std``
  *packed* into 2×2 patches: ``(batch, (h/2)·(w/2), 16·4)`` with ``h = H/8``, channel-major inside each
  patch (its ``_pack_latents``); they are unpacked here before the projection.

Nothing here runs per step unless a consumer asks for a preview, and :class:`PreviewThrottle` caps how
often one is made, so sampling speed does not change measurably.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.registry import Family

# ComfyUI comfy/latent_formats.py, class Flux (FLUX.1 VAE, used by Z-Image): rows are latent channels,
# columns R, G, B.
FLUX_RGB_FACTORS: tuple[tuple[float, float, float], ...] = (
    (-0.0346, 0.0244, 0.0681),
    (0.0034, 0.0210, 0.0687),
    (0.0275, -0.0668, -0.0433),
    (-0.0174, 0.0160, 0.0617),
    (0.0859, 0.0721, 0.0329),
    (0.0004, 0.0383, 0.0115),
    (0.0405, 0.0861, 0.0915),
    (-0.0236, -0.0185, -0.0259),
    (-0.0245, 0.0250, 0.1180),
    (0.1008, 0.0755, -0.0421),
    (-0.0515, 0.0201, 0.0011),
    (0.0428, -0.0012, -0.0036),
    (0.0817, 0.0765, 0.0749),
    (-0.1264, -0.0522, -0.1103),
    (-0.0280, -0.0881, -0.0499),
    (-0.1262, -0.0982, -0.0778),
)
FLUX_RGB_BIAS: tuple[float, float, float] = (-0.0329, -0.0718, -0.0851)

# ComfyUI comfy/latent_formats.py, class Wan21 (the Wan 2.1 VAE, which Qwen-Image's VAE follows).
WAN21_RGB_FACTORS: tuple[tuple[float, float, float], ...] = (
    (-0.1299, -0.1692, 0.2932),
    (0.0671, 0.0406, 0.0442),
    (0.3568, 0.2548, 0.1747),
    (0.0372, 0.2344, 0.1420),
    (0.0313, 0.0189, -0.0328),
    (0.0296, -0.0956, -0.0665),
    (-0.3477, -0.4059, -0.2925),
    (0.0166, 0.1902, 0.1975),
    (-0.0412, 0.0267, -0.1364),
    (-0.1293, 0.0740, 0.1636),
    (0.0680, 0.3019, 0.1128),
    (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699),
    (0.0060, -0.0633, 0.0005),
    (0.3477, 0.2275, 0.2950),
    (0.1984, 0.0913, 0.1861),
)
WAN21_RGB_BIAS: tuple[float, float, float] = (-0.1835, -0.0868, -0.3360)

LATENT_CHANNELS = 16
#: Pixels per latent pixel for both VAEs.
VAE_SCALE = 8


def _factors(family: Family) -> tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float]]:
    if family == "z-image":
        return FLUX_RGB_FACTORS, FLUX_RGB_BIAS
    if family == "qwen-image-edit":
        return WAN21_RGB_FACTORS, WAN21_RGB_BIAS
    raise ValueError(f"no latent preview factors for model family {family!r}")


def packed_grid(tokens: int, aspect: float) -> tuple[int, int]:
    """(rows, columns) of a packed latent with ``tokens`` patches whose image is ``aspect`` = width/height.

    The packed sequence loses the 2-D shape; of all factorisations of ``tokens`` the one closest to the
    image's aspect is the grid (the pipelines derive both sides from the same aspect).
    """
    best: tuple[float, int, int] | None = None
    for rows in range(1, math.isqrt(tokens) + 1):
        if tokens % rows:
            continue
        for r, c in ((rows, tokens // rows), (tokens // rows, rows)):
            error = abs(math.log(c / r) - math.log(aspect))
            if best is None or error < best[0]:
                best = (error, r, c)
    assert best is not None
    return best[1], best[2]


def unpack_qwen_latents(latents: Any, height: int, width: int) -> Any:
    """``(B, tokens, 64)`` packed latents → ``(B, 16, h, w)`` spatial latents (the pipeline's unpack).

    ``height``/``width`` are the output image's pixels when known; only their aspect is used, so the
    edit pipeline's own size rule (about 1024² at the last input's aspect) needs no repeating here.
    """
    batch, tokens, channels = latents.shape
    rows, cols = packed_grid(tokens, width / height)
    spatial = latents.view(batch, rows, cols, channels // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return spatial.reshape(batch, channels // 4, rows * 2, cols * 2)


def spatial_latents(latents: Any, family: Family, height: int, width: int) -> Any:
    """The first image's latents as ``(16, h, w)``, whatever layout the pipeline keeps them in."""
    if latents.ndim == 3:  # packed (Qwen-Image family)
        latents = unpack_qwen_latents(latents, height, width)
    elif latents.ndim == 5:  # (B, C, frames, h, w), as the Wan-style VAE takes them
        latents = latents[:, :, 0]
    if latents.ndim != 4 or latents.shape[1] != LATENT_CHANNELS:
        raise ValueError(f"unexpected latent shape {tuple(latents.shape)} for {family}")
    return latents[0]


def family_of(latents: Any) -> Family:
    """Which VAE made these latents, from how the pipeline lays them out: the Z-Image pipelines keep
    spatial ``(B, 16, h, w)`` latents, the Qwen-Image ones packed ``(B, tokens, 64)``."""
    return "qwen-image-edit" if latents.ndim == 3 else "z-image"


def latents_to_rgb(latents: Any, family: Family, height: int, width: int) -> Image.Image:
    """A small RGB picture (1/8 of the image's size) approximating what the VAE would decode.

    Runs on the latents' own device and copies only the 3-channel uint8 result to the CPU.
    """
    import torch
    from PIL import Image

    factors, bias = _factors(family)
    with torch.no_grad():
        spatial = spatial_latents(latents.detach(), family, height, width).float()
        matrix = torch.tensor(factors, dtype=torch.float32, device=spatial.device)
        offset = torch.tensor(bias, dtype=torch.float32, device=spatial.device)
        rgb = torch.einsum("chw,cr->hwr", spatial, matrix) + offset
        # The projection lands roughly in [-1, 1], the VAE's output range.
        pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(pixels)


@dataclass
class PreviewThrottle:
    """Decides when a preview is worth making: at most one per ``min_interval_s``, and never twice
    for the same step; the last step is always skipped (the real image follows at once)."""

    min_interval_s: float = 0.5
    _last_at: float = field(default=-math.inf, repr=False)

    def due(self, step: int, steps: int, now: float | None = None) -> bool:
        if step >= steps:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_at < self.min_interval_s:
            return False
        self._last_at = now
        return True


class LatentPreviewer:
    """The job queue's preview maker: a step's latents → a small RGB picture, a few times a second.

    Called on the worker thread between two steps, so it returns None (nothing to do) unless a preview
    is due; the projection itself is one small matrix product and a copy of ``3·h·w`` bytes.
    """

    def __init__(self, min_interval_s: float = 0.5) -> None:
        self._throttle = PreviewThrottle(min_interval_s)

    def __call__(self, step: Any) -> Image.Image | None:
        latents = getattr(step, "latents", None)
        if latents is None or not self._throttle.due(step.step, step.steps):
            return None
        width, height = step.width, step.height
        if not (width and height):
            # Spatial latents need no size; packed ones are unpacked as square without it.
            width = height = 1
        return latents_to_rgb(latents, family_of(latents), height, width)
