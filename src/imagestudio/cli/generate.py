"""``imagestudio generate``: text-to-image, or img2img / inpainting from ``--init-image`` / ``--mask``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from imagestudio.cli.app import (
    ConfigOption,
    JsonOption,
    app,
    friendly_errors,
    load_config,
    print_result,
)
from imagestudio.cli.enhance import EnhanceOption, improve_prompt, with_improved_prompt
from imagestudio.cli.job_run import JobSession
from imagestudio.cli.options import LoraOption, WeightsOption
from imagestudio.cli.outputs import prepare_out_dir

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.job_requests import ControlInput, GenerateRequest


@app.command()
@friendly_errors
def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw (any language).")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model id (see `imagestudio models list`).")
    ] = "",
    width: Annotated[
        int | None, typer.Option("--width", "-W", help="Width in pixels, multiple of 16.")
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", "-H", help="Height in pixels, multiple of 16.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (default: official).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="Guidance scale (Turbo: 0).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed; random when not given.")] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", help="Images to make, with seeds seed, seed+1, …")
    ] = 1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the images.")] = None,
    init_image: Annotated[
        Path | None,
        typer.Option("--init-image", help="Start from this image (img2img); resized to the output size."),
    ] = None,
    strength: Annotated[
        float | None,
        typer.Option(
            "--strength", help="With --init-image: how much to change, 0 < s <= 1 (default 0.6, inpaint 1.0)."
        ),
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="With --init-image: repaint only the white part of this mask (inpaint)."),
    ] = None,
    lora: LoraOption = None,
    variety: Annotated[
        float | None,
        typer.Option(
            "--variety",
            help="Seed variety 0..1 (default 0, off): noise on the prompt's embeddings per seed, so that "
            "seeds differ more on Z-Image-Turbo; the same seed and variety repeat the image.",
        ),
    ] = None,
    hires: Annotated[
        float | None,
        typer.Option(
            "--hires",
            help="Hires pass: upscale each image this many times (1-4), then rework it with img2img at a "
            "low strength (in tiles past the model's size limit).",
        ),
    ] = None,
    hires_upscaler: Annotated[
        str | None, typer.Option("--hires-upscaler", help="Upscaler of the hires pass (default: config's).")
    ] = None,
    hires_strength: Annotated[
        float | None,
        typer.Option("--hires-strength", help="img2img strength of the hires pass (default 0.35)."),
    ] = None,
    hires_steps: Annotated[
        int | None, typer.Option("--hires-steps", help="Steps of the hires pass (default: --steps).")
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control",
            help="TYPE:IMAGE[:WEIGHT] — steer with a control image through the model's ControlNet: canny "
            "(edges, OpenCV), mlsd (straight lines, OpenCV's LSD), hed (soft edges), depth or pose (detector "
            "models: imagestudio models download controlnet-hed / depth-anything-v2-small / "
            "vitpose-base-simple), or map (the image is already a control map); weight 0.65-0.80 (default "
            "0.75, the model card's range).",
        ),
    ] = None,
    control_start: Annotated[
        float, typer.Option("--control-start", help="Share of the steps before the control acts (0-1).")
    ] = 0.0,
    control_end: Annotated[
        float, typer.Option("--control-end", help="Share of the steps after which it stops (0-1).")
    ] = 1.0,
    weights: WeightsOption = None,
    enhance: EnhanceOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make images from a text prompt, or rework an image (--init-image) or part of it (--mask)."""
    from imagestudio.lora_refs import parse_lora

    settings = load_config(config)
    request = generate_request(
        settings,
        model=model or None,
        prompt=prompt,
        init_image=init_image,
        mask=mask,
        variety=variety,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance,
        seed=seed,
        count=count,
        strength=strength,
        loras=tuple(parse_lora(text) for text in lora or []),
        hires_scale=hires,
        hires_upscaler=hires_upscaler,
        hires_strength=hires_strength,
        hires_steps=hires_steps,
        control=control_input(settings, control, control_start, control_end) if control else None,
        weights=weights,
    )
    # After the request is valid (a bad size creates no folder), before the model loads.
    out = prepare_out_dir(out, settings)
    with JobSession(settings, out) as session:
        if enhance:
            # After every check, so a bad size fails at once rather than after the rewrite.
            request = with_improved_prompt(
                request, improve_prompt(session, prompt, request.model, weights=request.weights)
            )
        result = session.run(request)
    print_result(result, as_json)


def generate_request(
    settings: Settings,
    *,
    model: str | None,
    prompt: str,
    init_image: Path | None = None,
    mask: Path | None = None,
    **options: Any,
) -> GenerateRequest:
    """The command line's resolved request; with ``--init-image``, built by the builder every entry
    point shares for image-in requests (img2img, or inpainting with ``--mask``)."""
    from imagestudio.job_requests import GenerateRequest, build_image_request
    from imagestudio.registry import DEFAULT_GENERATE_MODEL
    from imagestudio.storage.inputs import InputLimits, read_input_image, silence_pillow_bomb_warning

    model_id = model or DEFAULT_GENERATE_MODEL
    start = mask_image = None
    if init_image is not None or mask is not None:
        silence_pillow_bomb_warning()
        limits = InputLimits.from_settings(settings)
        if init_image is not None:
            start = read_input_image(init_image, limits, label="init image")
        if mask is not None:
            mask_image = read_input_image(mask, limits, purpose="mask", label="mask")
    if start is None:
        # Text-to-image; the request itself refuses a mask or a strength without an init image.
        text_only: GenerateRequest = GenerateRequest.build(
            model=model_id, prompt=prompt, mask=mask_image, **options
        )
        return text_only.resolved(settings)
    request = build_image_request(
        settings,
        model=model_id,
        prompt=prompt,
        images=[start],
        mask=mask_image,
        task="text-to-image",
        **options,
    )
    if not isinstance(request, GenerateRequest):
        raise TypeError(f"a text-to-image model built a {type(request).__name__}")
    return request


def control_input(settings: Settings, text: str, start: float, end: float) -> ControlInput:
    """``TYPE:IMAGE[:WEIGHT]`` as a control input (the image read and checked like any input picture)."""
    from imagestudio.errors import InvalidRequest
    from imagestudio.job_requests import ControlInput
    from imagestudio.storage.inputs import InputLimits, read_input_image

    kind, _, rest = text.partition(":")
    path, weight = rest, None
    head, _, tail = rest.rpartition(":")
    if head:
        try:
            path, weight = head, float(tail)
        except ValueError:
            path = rest
    if not kind or not path:
        raise InvalidRequest(
            f"--control {text!r} is not TYPE:IMAGE[:WEIGHT] (e.g. canny:photo.png:0.7)",
            param="control",
            code="control_syntax",
            details={"value": text},
        )
    image = read_input_image(Path(path), InputLimits.from_settings(settings), label="control image")
    return ControlInput.build(type=kind, image=image, weight=weight, start=start, end=end)
