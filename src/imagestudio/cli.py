"""The ``imagestudio`` command line: parse → settings → call the studio → print. Thin on purpose.

Only light modules are imported at the top so ``imagestudio --help`` and ``models list`` answer in a
fraction of a second; torch and diffusers are imported inside the commands that run a model.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from imagestudio.errors import ImageStudioError, UserError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="imagestudio",
    help="A local studio for Z-Image-Turbo (text-to-image) and Qwen-Image-Edit-2511 (image editing).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, locate and fetch models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="config.yaml to use (else $IMAGESTUDIO_CONFIG, else ./config.yaml)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """User errors become one line and exit 2; other deliberate errors one line and exit 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            fail(exc.message, 2)
        except ImageStudioError as exc:
            fail(str(exc), 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        return None

    return wrapper  # type: ignore[return-value]


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what is loaded and where.")] = False,
) -> None:
    setup_logging(verbose)


def _settings(config: Path | None):
    from imagestudio.config import load_settings

    return load_settings(config)


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

    settings = _settings(config)
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
    result = _run_with_progress(
        settings, lambda studio, on_step: studio.generate(request, out, on_step=on_step)
    )
    _print_result(result, as_json)


def _run_with_progress(settings: Any, call: Callable[[Any, Any], Any]) -> Any:
    """Run a studio call, drawing a progress bar on stderr when it is a terminal."""
    from imagestudio.studio import Studio

    studio = Studio(settings)
    if not sys.stderr.isatty():
        return call(studio, None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("loading", total=1.0, detail="")

        def on_step(step: Any) -> None:
            progress.update(
                task,
                completed=step.fraction,
                description="generating",
                detail=f"image {step.image}/{step.images} · step {step.step}/{step.steps}",
            )

        return call(studio, on_step)


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    for image in result.images:
        typer.echo(str(image.path))


@models_app.command("list")
@friendly_errors
def models_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every model id with its task, size on disk and whether it is here."""
    from imagestudio.engine.loader import find_model_dir
    from imagestudio.registry import MODELS

    settings = _settings(config)
    rows = []
    for spec in MODELS.values():
        folder = find_model_dir(spec, settings, build_tiny=False)
        rows.append(
            {
                "id": spec.id,
                "task": spec.task,
                "state": "present" if folder else ("built on first use" if spec.tiny else "missing"),
                "size_bytes": folder_size(folder) if folder else spec.download_bytes,
                "path": str(folder) if folder else None,
                "repo": spec.repo_id,
            }
        )
    if as_json:
        typer.echo(json.dumps({"models": rows}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "task", "size", "state", "where")
    for row in rows:
        size = human_bytes(row["size_bytes"])
        table.add_row(
            row["id"],
            row["task"],
            size if row["path"] else f"~{size}",
            row["state"],
            row["path"] or row["repo"] or "",
        )
    Console().print(table)


@models_app.command("path")
@friendly_errors
def models_path(
    model_id: Annotated[str, typer.Argument(help="Model id.")],
    config: ConfigOption = None,
) -> None:
    """Print the model's local folder (building a tiny model if needed)."""
    from imagestudio.engine.loader import require_model_dir
    from imagestudio.registry import get_model

    typer.echo(str(require_model_dir(get_model(model_id), _settings(config))))


def folder_size(folder: Path) -> int:
    """Bytes under ``folder``, following the hub cache's symlinks to their blobs."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def main() -> None:
    app()
