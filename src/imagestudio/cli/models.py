"""``imagestudio models …``: list and locate models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from imagestudio.cli.app import ConfigOption, JsonOption, app, friendly_errors, load_config

models_app = typer.Typer(help="List, locate and fetch models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
@friendly_errors
def models_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every model id with its task, size on disk and whether it is here."""
    from imagestudio.engine.loader import find_model_dir
    from imagestudio.registry import MODELS

    settings = load_config(config)
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

    typer.echo(str(require_model_dir(get_model(model_id), load_config(config))))


def folder_size(folder: Path) -> int:
    """Bytes under ``folder``, following the hub cache's symlinks to their blobs."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
