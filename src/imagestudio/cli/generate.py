"""``imagestudio generate``: text-to-image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imagestudio.cli.app import (
    ConfigOption,
    JsonOption,
    app,
    friendly_errors,
    load_config,
    print_result,
    run_with_progress,
)
from imagestudio.cli.enhance import EnhanceOption, improve_prompt, with_improved_prompt
from imagestudio.cli.options import LoraOption
from imagestudio.cli.outputs import prepare_out_dir


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
    enhance: EnhanceOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make images from a text prompt, or rework an image (--init-image) or part of it (--mask)."""
    from imagestudio.lora_refs import parse_lora
    from imagestudio.registry import DEFAULT_GENERATE_MODEL
    from imagestudio.requests import GenerateRequest
    from imagestudio.storage.inputs import InputLimits, read_input_image, silence_pillow_bomb_warning

    settings = load_config(config)
    images = {}
    if init_image is not None or mask is not None:
        silence_pillow_bomb_warning()
        limits = InputLimits.from_settings(settings)
        if init_image is not None:
            images["init_image"] = read_input_image(init_image, limits, label="init image")
        if mask is not None:
            images["mask"] = read_input_image(mask, limits, purpose="mask", label="mask")
    request = GenerateRequest.build(
        model=model or DEFAULT_GENERATE_MODEL,
        prompt=prompt,
        variety=variety,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance,
        seed=seed,
        count=count,
        strength=strength,
        loras=tuple(parse_lora(text) for text in lora or []),
        **images,
    ).resolved(settings)
    # After the request is valid (a bad size creates no folder), before the model loads.
    out = prepare_out_dir(out, settings)
    if enhance:
        # After every check, so a bad size fails at once rather than after the rewrite.
        request = with_improved_prompt(request, improve_prompt(settings, prompt, request.model))
    result = run_with_progress(
        settings, lambda studio, on_step: studio.generate(request, out, on_step=on_step)
    )
    print_result(result, as_json)
