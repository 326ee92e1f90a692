"""``imagestudio doctor``: will each model run here, and how? (Nothing is downloaded or loaded.)"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from imagestudio.cli.app import ConfigOption, JsonOption, app, friendly_errors, load_config


@app.command()
@friendly_errors
def doctor(
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model id to check (repeatable; default: both).")
    ] = None,
    simulate_vram: Annotated[
        float | None,
        typer.Option(
            "--simulate-vram", help="Plan for a CUDA card with this many GB instead of this machine's."
        ),
    ] = None,
    simulate_ram: Annotated[
        float | None, typer.Option("--simulate-ram", help="Plan for this many GB of system RAM.")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the device, memory, disk and config, and show each model's memory plan."""
    from imagestudio.doctor import ICONS, run_doctor

    settings = load_config(config)
    report = run_doctor(settings, model, simulate_vram, simulate_ram)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    for check in report.checks:
        typer.echo(check.line())
    for entry in report.models:
        plan = entry.plan
        typer.echo("")
        for check in entry.checks:
            typer.echo(check.line())
        vram = (
            f"peak VRAM ~{plan.predicted_peak_vram_gb:.1f} GB of {plan.vram_budget_gb:.1f} GB usable, "
            if plan.vram_budget_gb is not None
            else ""
        )
        status = "ok" if plan.fits else ("warn" if plan.fits_vram else "fail")
        typer.echo(
            f"{ICONS[status]} {entry.spec.id} ({entry.params['transformer']:,} transformer parameters): "
            f"{plan.describe()} — {vram}peak RAM ~{plan.predicted_peak_ram_gb:.1f} GB of "
            f"{plan.ram_budget_gb:.1f} GB, {'fits' if plan.fits else 'does not fit'}"
        )
        typer.echo(f"   why: {plan.why}")
    typer.echo("")
    typer.echo(
        "GB = GiB (1024³ bytes). Peaks are predictions from the models' real configs, not measurements."
    )
