"""``imagestudio bench``: the benchmark runner of a source checkout, with every option passed through.

The benchmarks live beside ``src/`` in the repository (``benchmarks/``), not inside the installed
package: they build models and start processes that only make sense in a checkout. This command finds
that folder next to the package it is part of and runs ``python -m benchmarks`` there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from imagestudio.cli.app import app, fail

#: src/imagestudio/cli/bench.py → the repository root.
CHECKOUT = Path(__file__).resolve().parents[3]


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmarks (source checkouts only); `imagestudio bench --help` lists their options."""
    if not (CHECKOUT / "benchmarks" / "__main__.py").is_file():
        fail(
            "imagestudio bench needs a source checkout of imagestudio (its benchmarks/ folder sits beside "
            "src/ and is not installed with the package)",
            2,
        )
    env = dict(os.environ)
    paths = [str(CHECKOUT / "src"), str(CHECKOUT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    done = subprocess.run([sys.executable, "-m", "benchmarks", *ctx.args], env=env, check=False)
    raise typer.Exit(done.returncode)
