"""``imagestudio worker``: put this box's GPUs at the service of a studio on another machine (Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
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
) -> None:
    """Join a studio's cluster (--connect HEAD:PORT) or start its head node (--head); docs/scale-out.md."""
    from imagestudio.cluster.boxes import default_slots, explain_failure, start_command, versions

    python, ray = versions()
    if config is not None and not config.is_file():
        fail(f"--config {config} is not a file", 2)
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
    typer.echo(f"this box: Python {python}, Ray {ray}, {slots} worker slot(s), {gpus} GPU(s)", err=True)
    typer.echo("every box and the head must run the same Python and Ray versions", err=True)
    if dry_run:
        typer.echo(command.shown())
        return
    if connect is not None:
        from imagestudio.cluster.worker_checks import require_token, wait_for_head

        require_token(token_file)
        wait_for_head(connect)
    if head:
        typer.echo(
            f"head starting on port {port}; on each box run: imagestudio worker --connect "
            f"{node_ip or 'THIS-MACHINE'}:{port} --token-file <a copy of ~/.ray/auth_token from here>; "
            "then serve with cluster.backend: ray and cluster.address set to the same HOST:PORT",
            err=True,
        )
    # The output is teed so a failure can be explained in one line (version mismatch, bad token…).
    process = subprocess.Popen(
        command.argv,
        env={**os.environ, **command.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stopping = _forward_stop_signals(process)
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        typer.echo(line, nl=False, err=True)
    code = process.wait()
    if stopping:
        return  # stopped on request: ray start has stopped what it started
    if code != 0:
        reason = explain_failure("".join(seen[-200:]), python, ray)
        fail(reason or f"ray start exited with {code} (its output is above)", 1)


def _forward_stop_signals(process: subprocess.Popen[str]) -> list[int]:
    """Pass SIGTERM/SIGINT on to ``ray start --block``, which then stops the processes it started;
    without this a stopped worker left ``ray start`` and its raylet running as orphans. Returns the
    list the signals received are noted in (empty while none came)."""
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    return received
