"""``imagestudio enhance``: rewrite a short prompt with a local model; and ``--enhance`` for generate/edit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from imagestudio.cli.app import ConfigOption, JsonOption, app, friendly_errors, load_config

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.engine.enhance import EnhanceResult
    from imagestudio.job_requests import EditRequest, GenerateRequest
    from imagestudio.storage.inputs import InputImage

#: A resolved generate or edit request; a rewrite keeps its kind.
RequestT = TypeVar("RequestT", "GenerateRequest", "EditRequest")

EnhanceOption = Annotated[
    bool,
    typer.Option(
        "--enhance",
        help="Improve the prompt first with the model's own text encoder (no download); the rewrite is "
        "printed on stderr and both prompts are kept in the image's metadata.",
    ),
]


def improve_prompt(
    settings: Settings, prompt: str, model: str, images: tuple[InputImage, ...] = ()
) -> EnhanceResult:
    """Rewrite ``prompt`` in-process (the CLI has no queue) and say on stderr what it became."""
    from imagestudio.job_requests import EnhanceRequest
    from imagestudio.studio import Studio

    result = Studio(settings).enhance(EnhanceRequest.build(prompt=prompt, model=model, images=images))
    report(result)
    return result


def with_improved_prompt(request: RequestT, result: EnhanceResult) -> RequestT:
    """``request`` (resolved) running the rewrite, with the user's words kept as ``original_prompt``;
    unchanged when the rewrite was unusable (it then is the original prompt)."""
    if result.warning is not None or result.prompt == request.prompt:
        return request
    return request.model_copy(update={"prompt": result.prompt, "original_prompt": result.original_prompt})


def report(result: EnhanceResult) -> None:
    if result.warning:
        typer.echo(
            "warning: the model's rewrite was unusable; using the original prompt "
            "(the offline tiny models write random tokens: output quality needs the real model)",
            err=True,
        )
    else:
        typer.echo(f"improved prompt: {result.prompt}", err=True)


@app.command()
@friendly_errors
def enhance(
    prompt: Annotated[str, typer.Argument(help="The short prompt or edit instruction to rewrite.")],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Whose text encoder rewrites: a text-to-image model (default) or an edit model.",
        ),
    ] = "",
    images: Annotated[
        list[Path] | None,
        typer.Option("--image", "-i", help="Edit models: a picture the instruction is about (1 to 3)."),
    ] = None,
    language: Annotated[
        str, typer.Option("--language", help="auto (the prompt's), en or ru: the rewrite's language.")
    ] = "auto",
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed; random when not given.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Most tokens to write (16 to 1024; default 384).")
    ] = None,
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", help="Seconds before the rewrite is cut short (default 60)."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rewrite a short prompt into a detailed one (or an edit instruction into a precise one) and print it."""
    from imagestudio.job_requests import EnhanceRequest
    from imagestudio.registry import DEFAULT_GENERATE_MODEL
    from imagestudio.storage.inputs import InputLimits, read_input_image, silence_pillow_bomb_warning
    from imagestudio.studio import Studio

    settings = load_config(config)
    pictures: tuple[InputImage, ...] = ()
    if images:
        silence_pillow_bomb_warning()
        limits = InputLimits.from_settings(settings)
        pictures = tuple(read_input_image(path, limits) for path in images)
    request = EnhanceRequest.build(
        prompt=prompt,
        model=model or DEFAULT_GENERATE_MODEL,
        images=pictures,
        language=language,
        seed=seed,
        max_new_tokens=max_tokens,
        time_limit_s=time_limit,
    ).resolved(settings)
    result = Studio(settings).enhance(request)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        return
    if result.warning:
        report(result)
    typer.echo(result.prompt)
