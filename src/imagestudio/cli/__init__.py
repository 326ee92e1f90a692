"""The ``imagestudio`` command line: parse → settings → call the studio → print. Thin on purpose.

Each command lives in its own module and registers itself on the shared Typer ``app``. Only light
modules are imported here so ``imagestudio --help`` and ``models list`` answer in a fraction of a
second; torch and diffusers are imported inside the commands that run a model.
"""

from __future__ import annotations

import os
import sys

from imagestudio.cli import (  # noqa: F401  (registers the commands)
    bench,
    doctor,
    edit,
    enhance,
    generate,
    models,
    serve,
    worker,
)
from imagestudio.cli.app import app


def main() -> None:
    use_expandable_segments(os.environ)
    app()


def use_expandable_segments(environ: os._Environ[str] | dict[str, str]) -> None:
    """Ask PyTorch's CUDA allocator for expandable segments unless the user configured it.

    Must run before torch is imported (the allocator reads it once). It keeps memory from fragmenting
    over long sessions of differently sized images, a common cause of out-of-memory on 8-16 GB cards.
    Windows builds of torch do not support it, so it is only set elsewhere (start_app.bat sets it as the
    original documents did; torch ignores it there with a warning).
    """
    if sys.platform == "win32" or environ.get("PYTORCH_ALLOC_CONF"):
        return
    environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


__all__ = ["app", "main"]
