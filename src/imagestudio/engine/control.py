"""Control images for Z-Image: the map (OpenCV's Canny or line segments, a detector model's, or the user's
own), and the ControlNet pipeline.

The ControlNet is loaded beside the lent text-to-image pipeline and kept on it (``LoadedModel.extras``)
until the model is unloaded; the ControlNet pipelines are built over the very same components (no second
copy of any weight), the way img2img is (:func:`~imagestudio.engine.pipeline_calls.derived_pipeline`).
diffusers' ControlNet pipelines have no start/end for the control, so a hook on the ControlNet scales its
output to zero outside the chosen share of the steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings
    from imagestudio.engine.manager import LoadedModel
    from imagestudio.job_requests import ControlInput

#: Canny's hysteresis thresholds (A1111/Forge's defaults for the canny preprocessor).
CANNY_LOW, CANNY_HIGH = 100, 200
#: Characters of the map's SHA-256 recorded (as A1111 shortens hashes).
MAP_HASH_CHARS = 10


#: Control types whose map a detector model makes (engine/detectors.py), not a function of the pixels.
MODEL_DETECTED = ("hed", "depth", "pose")
#: Line segments shorter than this share of the picture's shorter side are left out of an mlsd map: the
#: M-LSD maps the ControlNet learned show a scene's long straight edges, not texture.
MLSD_MIN_LENGTH = 0.05
#: An mlsd map's lines are this many pixels wide per 512 of the picture's longer side (M-LSD's maps:
#: 1 px lines at its 512 working size).
MLSD_WIDTH_AT_512 = 1


def control_map(
    control: ControlInput,
    width: int,
    height: int,
    detect: Callable[[Image.Image], Image.Image] | None = None,
) -> Image.Image:
    """The map the ControlNet sees, at the output size: Canny edges, the picture as it is, or what
    ``detect`` (a detector model, for the types in :data:`MODEL_DETECTED`) makes of it."""
    import numpy as np
    from PIL import Image

    picture = control.image.image.convert("RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    if control.type == "map":
        return picture
    if control.type in MODEL_DETECTED:
        assert detect is not None, f"a {control.type} map is made by its detector"
        return detect(picture)
    import cv2

    grey = cv2.cvtColor(np.asarray(picture), cv2.COLOR_RGB2GRAY)
    if control.type == "mlsd":
        return Image.fromarray(np.stack([line_segments(grey)] * 3, axis=-1), "RGB")
    edges = cv2.Canny(grey, CANNY_LOW, CANNY_HIGH)
    return Image.fromarray(np.stack([edges] * 3, axis=-1), "RGB")


def line_segments(grey: Any) -> Any:
    """The picture's long straight line segments, white on black, found by OpenCV's LSD.

    OpenCV's Line Segment Detector (von Gioi et al., no weights), not the M-LSD network the ControlNet's
    maps came from: M-LSD's weights are published only as pickle files, which the studio does not load.
    Both give straight segments; the short ones are dropped to keep what M-LSD's maps show.
    """
    import cv2
    import numpy as np

    height, width = grey.shape
    found = cv2.createLineSegmentDetector().detect(grey)[0]
    canvas = np.zeros((height, width), dtype=np.uint8)
    if found is None:
        return canvas
    segments = found.reshape(-1, 4)
    lengths = np.hypot(segments[:, 2] - segments[:, 0], segments[:, 3] - segments[:, 1])
    stroke = max(1, round(MLSD_WIDTH_AT_512 * max(width, height) / 512))
    for x1, y1, x2, y2 in segments[lengths >= MLSD_MIN_LENGTH * min(width, height)].round().astype(int):
        cv2.line(canvas, (int(x1), int(y1)), (int(x2), int(y2)), 255, stroke)
    return canvas


def map_hash(image: Image.Image) -> str:
    """A short SHA-256 of the map's pixels: the same map, the same hash, whatever file it came from."""
    digest = hashlib.sha256(f"{image.width}x{image.height}".encode() + image.tobytes())
    return digest.hexdigest()[:MAP_HASH_CHARS]


def lent_controlnet(settings: Settings, loaded: LoadedModel) -> Any:
    """The ControlNet of the lent model, loaded on first use and kept with it (dropped with the model)."""
    from imagestudio.models.controlnets import load_controlnet, require_controlnet
    from imagestudio.registry import controlnet_for

    held = loaded.extras.get("controlnet")
    if held is not None:
        return held
    spec = controlnet_for(loaded.spec.id)
    assert spec is not None, "the request was resolved against this model"
    transformer = loaded.pipe.transformer
    controlnet = load_controlnet(require_controlnet(spec, settings), transformer.dtype)
    # Whole on the accelerator whatever the offload profile: the plan counts it there (memory/extras.py).
    controlnet.to(loaded.device)
    loaded.extras["controlnet"] = controlnet
    return controlnet


def control_pipeline(pipe: Any, controlnet: Any, *, inpaint: bool) -> Any:
    """A ZImageControlNet(Inpaint)Pipeline over ``pipe``'s own components and ``controlnet``."""
    import diffusers

    from imagestudio.engine.pipeline_calls import derived_pipeline

    name = "ZImageControlNetInpaintPipeline" if inpaint else "ZImageControlNetPipeline"
    pipeline_class = getattr(diffusers, name)

    def build(**components: Any) -> Any:
        return pipeline_class(controlnet=controlnet, **components)

    return derived_pipeline(build, pipe)


@contextmanager
def control_window(controlnet: Any, steps: int, start: float, end: float) -> Iterator[None]:
    """Zero the ControlNet's effect on the steps before ``start`` and from ``end`` on (shares of ``steps``).

    The pipelines call the ControlNet once per step (guidance is off for Turbo); the hook counts the calls.
    """
    first, last = round(start * steps), round(end * steps)
    calls = [0]

    def hook(
        _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        step = calls[0] % max(1, steps)
        calls[0] += 1
        if not first <= step < last:
            kwargs = {**kwargs, "conditioning_scale": 0.0}
        return args, kwargs

    handle = controlnet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def control_call(pipe: Any, control_image: Image.Image, weight: float) -> Callable[..., Any]:
    """``pipe(...)`` with the control map and its weight added to every call."""

    def call(**kwargs: Any) -> Any:
        return pipe(**kwargs, control_image=control_image, controlnet_conditioning_scale=weight)

    return call


def img2img_call(
    pipe: Any, control_image: Image.Image, weight: float, init_image: Image.Image, strength: float, steps: int
) -> Callable[..., Any]:
    """``pipe(...)`` (a ZImageControlNetPipeline) run as img2img: started from ``init_image`` re-noised.

    diffusers 0.42 has no img2img ControlNet pipeline for Z-Image, but its ControlNet pipeline takes the
    starting ``latents`` and the ``sigmas`` to run. Given the tail of Z-Image's default schedule that an
    img2img of ``strength`` runs (the pipeline shifts it exactly as it shifts the whole schedule) and the
    init image's latents noised to that tail's first sigma, it does what ZImageImg2ImgPipeline does: the
    same skipped steps (its ``get_timesteps``), the same ``scale_noise``.
    """
    from imagestudio.job_requests import denoising_steps

    schedule = _default_sigmas(steps)
    tail = schedule[steps - denoising_steps(steps, strength) :]

    def call(**kwargs: Any) -> Any:
        latents = _noised_latents(
            pipe, init_image, tail, kwargs["width"], kwargs["height"], kwargs["generator"]
        )
        return pipe(
            **kwargs,
            control_image=control_image,
            controlnet_conditioning_scale=weight,
            latents=latents,
            sigmas=tail,
        )

    return call


def _default_sigmas(steps: int) -> list[float]:
    from diffusers.pipelines.z_image.pipeline_z_image_controlnet import get_default_z_image_sigmas

    return list(get_default_z_image_sigmas(steps))


def _noised_latents(
    pipe: Any, image: Image.Image, sigmas: list[float], width: int, height: int, generator: Any
) -> Any:
    """``image``'s latents noised to the first of ``sigmas`` after the pipeline's shift (img2img's start)."""
    import torch
    from diffusers.pipelines.z_image.pipeline_z_image_controlnet import calculate_shift, retrieve_latents
    from diffusers.utils.torch_utils import randn_tensor

    device = pipe._execution_device
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    latent_height = 2 * (height // (pipe.vae_scale_factor * 2))
    latent_width = 2 * (width // (pipe.vae_scale_factor * 2))
    config = scheduler.config
    mu = calculate_shift(
        (latent_height // 2) * (latent_width // 2),
        config.get("base_image_seq_len", 256),
        config.get("max_image_seq_len", 4096),
        config.get("base_shift", 0.5),
        config.get("max_shift", 1.15),
    )
    scheduler.set_timesteps(sigmas=sigmas, device=device, mu=mu)
    # In the img2img pipeline's order and dtype (that of the prompt embeddings): encode, then draw noise.
    dtype = pipe.text_encoder.dtype
    pixels = pipe.image_processor.preprocess(image, height=height, width=width).to(torch.float32)
    pixels = pixels.to(device=device, dtype=dtype)
    encoded = retrieve_latents(pipe.vae.encode(pixels), generator=generator)
    encoded = (encoded - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
    shape = (1, pipe.transformer.in_channels, latent_height, latent_width)
    noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    return scheduler.scale_noise(encoded, scheduler.timesteps[:1], noise)
