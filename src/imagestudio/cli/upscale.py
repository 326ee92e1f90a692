"""``imagestudio upscale``: enlarge a picture with an ESRGAN-family upscaler, tile by tile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from imagestudio.cli.app import ConfigOption, JsonOption, app, friendly_errors, load_config, print_result
from imagestudio.cli.job_run import run_job
from imagestudio.cli.outputs import prepare_out_dir


@app.command()
@friendly_errors
def upscale(
    image: Annotated[Path, typer.Argument(help="The picture to enlarge (PNG, JPEG or WebP).")],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Upscaler id (default: upscale.default_upscaler, Real-ESRGAN x4plus)."
        ),
    ] = "",
    scale: Annotated[float, typer.Option("--scale", "-s", help="How many times larger, 1 to 8.")] = 2.0,
    tile: Annotated[
        int | None, typer.Option("--tile", help="Tile side in input pixels (default: what fits).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the result.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Enlarge a picture; the result records the upscaler and the scale in its metadata."""
    from imagestudio.job_requests import build_upscale_request
    from imagestudio.storage.inputs import InputLimits, read_input_image, silence_pillow_bomb_warning

    settings = load_config(config)
    silence_pillow_bomb_warning()
    picture = read_input_image(image, InputLimits.from_settings(settings), label="image")
    request = build_upscale_request(settings, picture, upscaler=model or None, scale=scale, tile=tile)
    out = prepare_out_dir(out, settings)
    print_result(run_job(settings, request, out), as_json)
