"""The ``imagestudio`` command line: parse → settings → call the studio → print. Thin on purpose.

Each command lives in its own module and registers itself on the shared Typer ``app``. Only light
modules are imported here so ``imagestudio --help`` and ``models list`` answer in a fraction of a
second; torch and diffusers are imported inside the commands that run a model.
"""

from __future__ import annotations

import os

from imagestudio.cli import (  # noqa: F401  (registers the commands)
    bench,
    doctor,
    edit,
    enhance,
    generate,
    mcp_command,
    models,
    serve,
    worker,
)
from imagestudio.cli.allocator import use_expandable_segments
from imagestudio.cli.app import app


def main() -> None:
    use_expandable_segments(os.environ)
    app()


__all__ = ["app", "main"]
