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
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make images from a text prompt."""
    from imagestudio.registry import DEFAULT_GENERATE_MODEL
    from imagestudio.requests import GenerateRequest

    settings = load_config(config)
    request = GenerateRequest.build(
        model=model or DEFAULT_GENERATE_MODEL,
        prompt=prompt,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance,
        seed=seed,
        count=count,
    ).resolved(settings)
    result = run_with_progress(
        settings, lambda studio, on_step: studio.generate(request, out, on_step=on_step)
    )
    print_result(result, as_json)
