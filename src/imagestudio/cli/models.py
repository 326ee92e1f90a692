"""``imagestudio models …``: list, locate, download, verify and remove models. Thin: the work is in
:mod:`imagestudio.models`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from imagestudio.cli.app import ConfigOption, JsonOption, app, friendly_errors, load_config
from imagestudio.models.units import human_bytes

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.models.download import DownloadPlan
    from imagestudio.models.progress import DownloadProgress

models_app = typer.Typer(help="List, locate, fetch, check and remove models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

ModelArgument = Annotated[str, typer.Argument(help="Model id (see `imagestudio models list`).")]
WeightsOption = Annotated[
    str, typer.Option("--weights", help="Weight variant (bf16: the model itself; gguf-q4_k_m, sdnq-uint4 …).")
]

#: Without a terminal (logs, CI) progress is a line at most this often, plus one per file.
LINE_PROGRESS_INTERVAL_S = 2.0


@models_app.command("list")
@friendly_errors
def models_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every model id with its task, state (present / partial / missing / tiny), size on disk and place."""
    from imagestudio.memory.variant_sizes import variant_listing
    from imagestudio.models.state import list_states
    from imagestudio.registry import get_model

    settings = load_config(config)
    states = list_states(settings)
    variants = {s.id: variant_listing(get_model(s.id), settings) for s in states}
    if as_json:
        models = [{**s.as_json(), "variants": variants[s.id]} for s in states]
        typer.echo(json.dumps({"models": models}, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "task", "size", "state", "where")
    for state in states:
        if state.state == "missing":
            size = f"~{human_bytes(state.download_bytes)}"
        elif state.state == "tiny":
            size = "-"
        else:
            size = human_bytes(state.size_bytes)
        where = str(state.path) if state.path else (state.repo or "")
        if state.problem:
            where = f"{where}\n[dim]{state.problem}[/dim]".strip()
        table.add_row(state.id, state.task, size, state.state, where)
        for row in variants[state.id]:
            if row["variant"] == "bf16" or state.state == "tiny":
                continue  # bf16 is the model's own row; tiny variants are built on first use
            shown = str(row["path"] or row["repo"] or "")
            amount = f"~{human_bytes(int(row['download_bytes']))}" if row["state"] == "missing" else "-"  # type: ignore[call-overload]
            table.add_row(f"  ↳ {row['variant']}", "", amount, str(row["state"]), shown)
    Console().print(table)


@models_app.command("path")
@friendly_errors
def models_path(model_id: ModelArgument, config: ConfigOption = None) -> None:
    """Print the model's local folder (building a tiny model if needed); refuses an incomplete one."""
    from imagestudio.models.state import require_model_dir
    from imagestudio.registry import get_model

    typer.echo(str(require_model_dir(get_model(model_id), load_config(config))))


@models_app.command("download")
@friendly_errors
def models_download(
    model_id: ModelArgument,
    revision: Annotated[
        str | None,
        typer.Option("--revision", help="Branch, tag or commit (default: models.<id>.revision or main)."),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Download into this plain folder instead of the Hugging Face cache."),
    ] = None,
    weights: Annotated[
        str,
        typer.Option(
            "--weights",
            help="Weight variant: bf16 (default) or a GGUF/SDNQ one (gguf-q4_k_m, sdnq-uint4 …; "
            "`imagestudio doctor` recommends one for this machine). Fetches only what it needs.",
        ),
    ] = "bf16",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch the files the model's pipeline needs, after checking the disk; resumes where it stopped."""
    from imagestudio.models.download import download_variant
    from imagestudio.registry import DETECTORS, UPSCALERS

    settings = load_config(config)
    reporter = _ProgressReporter(sys.stderr.isatty())
    if model_id in UPSCALERS or model_id in DETECTORS:
        _download_extra(settings, model_id, reporter)
        return
    try:
        with reporter:
            result = download_variant(
                settings,
                model_id,
                weights,
                revision=revision,
                to=to,
                on_progress=reporter.update,
                on_plan=reporter.plan,
            )
    except KeyboardInterrupt:
        typer.echo(f"error: download of {model_id} interrupted; run the same command to resume", err=True)
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    if result.note:
        typer.echo(f"{model_id}: {result.note}", err=True)
    else:
        typer.echo(
            f"{model_id}: {human_bytes(result.fetched_bytes)} fetched in {result.elapsed_s:.1f} s, "
            f"{human_bytes(result.total_bytes)} in {result.files} files; {result.report.summary()}",
            err=True,
        )
    if to is not None and result.folder != settings.models_dir / model_id:
        typer.echo(
            f"use it with, in config.yaml:  models: {{{model_id}: {{path: {result.folder}}}}}", err=True
        )
    typer.echo(str(result.folder))


@models_app.command("verify")
@friendly_errors
def models_verify(
    model_id: ModelArgument,
    weights: WeightsOption = "bf16",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that every file the model needs is there and whole (headers and configs only; fast)."""
    from imagestudio.models.state import fix_command, verify_model
    from imagestudio.registry import get_model

    if weights != "bf16":
        _verify_variant(load_config(config), model_id, weights, as_json)
        return
    state, report = verify_model(load_config(config), model_id)
    if as_json:
        payload = {
            "model": model_id,
            "path": str(report.folder),
            "ok": report.ok,
            "problems": list(report.problems),
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
    elif report.ok:
        typer.echo(f"{model_id}: OK — {report.summary()} ({report.folder})")
    else:
        typer.echo(f"{model_id} at {report.folder} is incomplete:", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        typer.echo(fix_command(get_model(model_id), state.source), err=True)
    if not report.ok:
        raise typer.Exit(1)


def _verify_variant(settings: Any, model_id: str, weights: str, as_json: bool) -> None:
    from imagestudio.models.variant_state import verify_variant

    report = verify_variant(settings, model_id, weights)
    if as_json:
        payload = {
            "model": model_id,
            "weights": weights,
            "path": str(report.folder),
            "ok": report.ok,
            "problems": list(report.problems),
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
    elif report.ok:
        typer.echo(f"{model_id} {weights}: OK — {report.summary()} ({report.folder})")
    else:
        typer.echo(f"{model_id} {weights} at {report.folder} is incomplete:", err=True)
        for problem in report.problems:
            typer.echo(f"  {problem}", err=True)
        typer.echo(f"run: imagestudio models download {model_id} --weights {weights}", err=True)
    if not report.ok:
        raise typer.Exit(1)


@models_app.command("remove")
@friendly_errors
def models_remove(
    model_id: ModelArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    weights: WeightsOption = "bf16",
    config: ConfigOption = None,
) -> None:
    """Delete a model's downloaded files (its hub cache entry and models-dir folder) to free the disk."""
    from imagestudio.errors import UserError
    from imagestudio.models.removal import plan_removal, remove_model
    from imagestudio.models.variant_state import plan_variant_removal

    settings = load_config(config)
    removal = (
        plan_removal(settings, model_id)
        if weights == "bf16"
        else plan_variant_removal(settings, model_id, weights)
    )
    if not removal.paths:
        typer.echo(f"{model_id}: nothing to remove")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"this deletes {removal.describe()}; add --yes to confirm", param="--yes")
        typer.confirm(f"Delete {removal.describe()}?", abort=True)
    remove_model(removal)
    typer.echo(f"removed {removal.describe()}")


def _download_extra(settings: Settings, extra_id: str, reporter: _ProgressReporter) -> None:
    """An upscaler (one file) or a control-map detector (a small folder): fetched (resumably, checked) into
    the hub cache; prints its path."""
    from imagestudio.models.detectors import download_detector
    from imagestudio.models.upscalers import download_upscaler
    from imagestudio.registry import UPSCALERS

    download = download_upscaler if extra_id in UPSCALERS else download_detector
    try:
        path = download(settings, extra_id, on_progress=reporter.update)
    except KeyboardInterrupt:
        typer.echo(f"error: download of {extra_id} interrupted; run the same command to resume", err=True)
        raise typer.Exit(130) from None
    typer.echo(str(path))


class _ProgressReporter:
    """Download progress on stderr: a rich bar on a terminal, otherwise a line every few seconds."""

    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self.bar: Any = None
        self.task: Any = None
        self.last_line = 0.0
        self.last_file: str | None = None

    def __enter__(self) -> _ProgressReporter:
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rate]}  ETA {task.fields[eta]}  [dim]{task.fields[file]}"),
                console=Console(stderr=True),
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def plan(self, plan: DownloadPlan) -> None:
        have = f", {human_bytes(plan.have_bytes)} already here" if plan.have_bytes else ""
        typer.echo(
            f"{plan.model_id}: {plan.repo_id}@{plan.commit[:10]}, {len(plan.files)} files, "
            f"{human_bytes(plan.total_bytes)}{have}; {human_bytes(plan.fetch_bytes)} to fetch "
            f"into {plan.folder}",
            err=True,
        )
        if self.bar is not None:
            self.task = self.bar.add_task(
                plan.model_id, total=plan.total_bytes, completed=plan.have_bytes, rate="", eta="?", file=""
            )

    def update(self, event: DownloadProgress) -> None:
        from imagestudio.models.units import human_duration

        if self.bar is not None and self.task is not None:
            self.bar.update(
                self.task,
                completed=event.done_bytes,
                rate=f"{human_bytes(event.rate)}/s",
                eta=human_duration(event.eta),
                file=event.current_file or "",
            )
            return
        now = time.monotonic()
        if event.current_file != self.last_file or now - self.last_line >= LINE_PROGRESS_INTERVAL_S:
            self.last_line, self.last_file = now, event.current_file
            typer.echo(event.line(), err=True)
