"""``imagestudio edit``: edit one to three pictures with an instruction (Qwen-Image-Edit)."""

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
from imagestudio.cli.job_run import run_job
from imagestudio.cli.options import LoraOption
from imagestudio.cli.outputs import prepare_out_dir

if TYPE_CHECKING:
    from imagestudio.config import Settings


@app.command()
@friendly_errors
def edit(
    prompt: Annotated[
        str, typer.Argument(help="The instruction (any language); call the inputs Picture 1, 2, 3.")
    ],
    images: Annotated[
        list[Path] | None,
        typer.Option("--image", "-i", help="Input image (PNG, JPEG, WebP); 1 to 3, in order."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model id (see `imagestudio models list`).")
    ] = "",
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (default: official).")] = None,
    true_cfg: Annotated[
        float | None, typer.Option("--true-cfg", help="True CFG scale (official 4.0; 1.0 turns CFG off).")
    ] = None,
    negative: Annotated[
        str | None, typer.Option("--negative", help="Negative prompt (official: a single space).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed; random when not given.")] = None,
    width: Annotated[
        int | None,
        typer.Option(
            "--width",
            "-W",
            help="Output width, multiple of 16 (with --height; default: ~1024² at the last image's aspect).",
        ),
    ] = None,
    height: Annotated[
        int | None, typer.Option("--height", "-H", help="Output height, multiple of 16 (with --width).")
    ] = None,
    count: Annotated[
        int, typer.Option("--count", "-n", help="Images to make, with seeds seed, seed+1, …")
    ] = 1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the images.")] = None,
    lora: LoraOption = None,
    lightning: Annotated[
        int | None,
        typer.Option("--lightning", help="Use the Lightning LoRA: 4 or 8 steps at true CFG 1.0."),
    ] = None,
    enhance: EnhanceOption = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Edit one to three images with an instruction."""
    from imagestudio.lora_refs import parse_lora

    settings = load_config(config)
    request = edit_request(
        settings,
        model=model,
        prompt=prompt,
        images=images or [],
        steps=steps,
        true_cfg_scale=true_cfg,
        negative_prompt=negative,
        seed=seed,
        width=width,
        height=height,
        count=count,
        loras=tuple(parse_lora(text) for text in lora or []),
        lightning=lightning,
    )
    # After the request is valid (a bad size creates no folder), before the model loads.
    out = prepare_out_dir(out, settings)
    if enhance:
        # The model rewrites the instruction while looking at the pictures.
        result = improve_prompt(settings, prompt, request.model, request.images)
        request = with_improved_prompt(request, result)
    print_result(run_job(settings, request, out), as_json)


def edit_request(
    settings: Settings, *, model: str | None, prompt: str, images: list[Path], **options: Any
) -> Any:
    """The files on the command line, decoded and built into a resolved request by the shared builder."""
    from imagestudio.job_requests import build_image_request, check_image_count
    from imagestudio.registry import DEFAULT_EDIT_MODEL, get_model
    from imagestudio.storage.inputs import InputLimits, read_input_image, silence_pillow_bomb_warning

    model_id = model or DEFAULT_EDIT_MODEL
    # Count first: a fourth image is refused before any file is decoded.
    check_image_count(get_model(model_id, task="edit"), len(images))
    silence_pillow_bomb_warning()
    limits = InputLimits.from_settings(settings)
    return build_image_request(
        settings,
        model=model_id,
        prompt=prompt,
        images=[read_input_image(path, limits) for path in images],
        **options,
    )
