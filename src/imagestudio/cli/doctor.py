"""``imagestudio doctor``: will each model run here, and how? (Nothing is downloaded or loaded.)"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from imagestudio.cli.app import ConfigOption, JsonOption, app, friendly_errors, load_config

if TYPE_CHECKING:
    from imagestudio.doctor import ModelReport


def variant_table(entry: ModelReport) -> list[str]:
    """The model's weight variants on this machine, one aligned row each, then the recommendation."""
    header = ("variant", "download", "here", "fits", "peak VRAM", "peak RAM", "PCIe/image", "plan", "quality")
    rows = [header]
    for row in entry.variants:
        plan = row.plan
        vram = f"{plan.predicted_peak_vram_gb:.1f} GB" if plan.vram_budget_gb is not None else "-"
        rows.append(
            (
                row.variant.name,
                f"{row.download_bytes / 1000**3:.1f} GB",
                "yes" if row.present else "no",
                "yes" if plan.fits else "no",
                vram,
                f"{plan.predicted_peak_ram_gb:.1f} GB",
                f"{plan.transfer_gb_per_image:.0f} GB",
                plan.describe(),
                f"{row.variant.quality} ({row.variant.quality_source})",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
    ]
    recommended = entry.recommended
    if recommended is None:
        why = entry.best.why if entry.best is not None else ""
        lines.append(f"→ no variant fits this machine: {why}")
    else:
        variant = entry.spec.variant(recommended)
        source = variant.repo_id or entry.spec.repo_id or "built locally"
        if variant.filename:
            source = f"{source}, file {variant.filename}"
        lines.append(f"→ recommended for this machine: {recommended} ({source})")
        best = entry.best
        if best is not None and best.preferred_over:
            lines.append(
                f"  rather than {best.preferred_over}, which also fits but streams "
                f"~{best.preferred_over_transfer_gb:.0f} GB over PCIe per image against "
                f"~{best.transfer_gb_per_image:.0f} GB ({best.profile} moves the weights every step)"
            )
    return lines


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
        for check in entry.extras:
            typer.echo(f"   {check.line()}")
        for line in variant_table(entry):
            typer.echo(f"   {line}")
    typer.echo("")
    typer.echo(
        "GB = GiB (1024³ bytes) except downloads (decimal GB). Peaks and traffic are predictions from the "
        "models' real configs and the variants' file headers or published sizes, not measurements."
    )
