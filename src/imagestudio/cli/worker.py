"""``imagestudio worker``: put this box's GPUs at the service of a studio on another machine (Ray)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Annotated

import typer

from imagestudio.cli.app import app, fail, friendly_errors


@app.command()
@friendly_errors
def worker(
    connect: Annotated[
        str | None, typer.Option("--connect", help="The head's HOST:PORT (printed by `worker --head`).")
    ] = None,
    head: Annotated[
        bool, typer.Option("--head", help="Start the cluster's head node here (on the studio's machine).")
    ] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The head's port (--head).")] = 6379,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=0, max=64, help="Worker slots here (default: one per GPU, else 1)."),
    ] = None,
    node_ip: Annotated[
        str | None, typer.Option("--node-ip", help="This box's address on the private network.")
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="The head's auth token (its ~/.ray/auth_token).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="This box's config.yaml (its models folder, device).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the command instead of running it.")
    ] = False,
    simulate_vram: Annotated[
        float | None,
        typer.Option("--simulate-vram", help="Plan (and be scheduled) as a CUDA card of this many GB."),
    ] = None,
    simulate_ram: Annotated[
        float | None, typer.Option("--simulate-ram", help="Plan (and be scheduled) with this many GB of RAM.")
    ] = None,
    dead_after: Annotated[
        float | None,
        typer.Option(
            "--dead-after",
            min=2,
            max=600,
            help="(--head) Count a silent box dead after about this many seconds (Ray's default: 30-65).",
        ),
    ] = None,
    rejoin: Annotated[
        bool,
        typer.Option(
            "--rejoin/--no-rejoin",
            help="(--connect) Join again when the cluster drops this box (a lost link, a restarted head).",
        ),
    ] = True,
) -> None:
    """Join a studio's cluster (--connect HEAD:PORT) or start its head node (--head); docs/scale-out.md."""
    from imagestudio.cluster.boxes import (
        box_environment,
        default_slots,
        ensure_head_token,
        explain_failure,
        start_command,
        versions,
    )

    python, ray = versions()
    if config is not None and not config.is_file():
        fail(f"--config {config} is not a file", 2)
    if head and not dry_run and not os.environ.get("RAY_AUTH_TOKEN"):
        token_file = ensure_head_token(token_file)
    if token_file is not None and not token_file.is_file():
        fail(f"--token-file {token_file} is not a file", 2)
    slots, gpus = default_slots() if workers is None else (workers, min(workers, default_slots()[1]))
    if head and workers is None:
        slots = gpus  # the head's own node only hosts workers for its GPUs unless asked
    command = start_command(
        connect=connect,
        head_port=port if head else None,
        slots=slots,
        gpus=gpus,
        node_ip=node_ip,
        token_file=token_file,
        config=config,
    )
    for flag, value in (("--simulate-vram", simulate_vram), ("--simulate-ram", simulate_ram)):
        if value is not None and value <= 0:
            fail(f"{flag} {value:g} must be a positive number of GB", 2)
    command.env.update(box_environment(simulate_vram, simulate_ram, dead_after if head else None))
    typer.echo(f"this box: Python {python}, Ray {ray}, {slots} worker slot(s), {gpus} GPU(s)", err=True)
    typer.echo("every box and the head must run the same Python and Ray versions", err=True)
    if dry_run:
        typer.echo(command.shown())
        return
    if head:
        typer.echo(
            f"head starting on port {port}; on each box run: imagestudio worker --connect "
            f"{node_ip or 'THIS-MACHINE'}:{port} --token-file <a copy of {token_file}>; "
            "then serve with cluster.backend: ray and cluster.address set to the same HOST:PORT",
            err=True,
        )
    while True:
        code, seen, joined = _run_ray(command.argv, {**os.environ, **command.env})
        if code == 0 or head:
            break
        if joined and rejoin:
            # The cluster dropped this box (a link down longer than the head's health checks, or a
            # restarted head): Ray does not let a node it counted dead come back, so join as a new one.
            typer.echo(
                f"error: this box left the cluster (ray start exited with {code}); joining again", err=True
            )
            time.sleep(REJOIN_PAUSE_S)
            continue
        break
    if code != 0:
        reason = explain_failure("".join(seen[-200:]), python, ray)
        if joined and not head:
            reason = f"this box lost the cluster at {connect} and left it (ray start exited with {code})"
        fail(reason or f"ray start exited with {code} (its output is above)", 1)


#: Pause before joining again after the cluster dropped this box.
REJOIN_PAUSE_S = 2.0
#: What ``ray start`` prints once the node is up (before that, a failure is a refusal to join).
JOINED = "Ray runtime started"


def _run_ray(argv: list[str], env: dict[str, str]) -> tuple[int, list[str], bool]:
    """Run ``ray start --block`` teeing its output (a failure is explained from it in one line)."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen: list[str] = []
    joined = False
    for line in process.stdout:
        seen.append(line)
        joined = joined or JOINED in line
        typer.echo(line, nl=False, err=True)
    return process.wait(), seen, joined
