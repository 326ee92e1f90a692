"""What many tests do the same way: run the command line, write or read a picture, wait for a condition.

Plain functions, no fixtures (those are in conftest.py): import them where needed.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import Image

from imagestudio.errors import ConfigError, InvalidRequest
from tests.conftest import PYTHON, cli_env

T = TypeVar("T")

#: How long one command of the command line may take on a loaded 2-core machine.
CLI_TIMEOUT_S = 300


def run_cli(*args: str, config: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m imagestudio ARGS [--config CONFIG]`` from this checkout, with ``env`` added."""
    argv = [PYTHON, "-m", "imagestudio", *args]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(
        argv, capture_output=True, text=True, env=cli_env(**env), timeout=CLI_TIMEOUT_S, check=False
    )


def python_output(code: str, timeout: float = 120) -> str:
    """What ``code`` prints, run by a fresh interpreter of this checkout (stripped); fails if it fails."""
    done = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def heavy_imports_after(*argvs: list[str]) -> str:
    """A fresh interpreter runs the command line with each of ``argvs``; it prints ``HEAVY [...]``: which
    of torch, diffusers and transformers it imported on the way (help and listings must not need them)."""
    probe = (
        "import sys\n"
        "from imagestudio.cli import app\n"
        f"for argv in {list(argvs)!r}:\n"
        "    try:\n"
        "        app(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('HEAVY', [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])\n"
    )
    return python_output(probe, timeout=60)


def pixels(path: Path, mode: str | None = "RGB") -> np.ndarray:
    """The picture at ``path`` as an array (converted to ``mode``; None keeps the file's own)."""
    with Image.open(path) as image:
        return np.asarray(image.convert(mode) if mode is not None else image)


def refused(build: Callable[..., Any], *args: Any, **fields: Any) -> InvalidRequest:
    """The InvalidRequest that ``build(*args, **fields)`` (a request builder) raises; fails if it builds."""
    with pytest.raises(InvalidRequest) as info:
        build(*args, **fields)
    return info.value


def config_refusal(folder: Path, text: str) -> ConfigError:
    """The ConfigError that loading ``text`` as a config file (in ``folder``) raises; fails if it loads."""
    from imagestudio.config import load_settings

    path = folder / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value


def write_picture(path: Path, seed: int, size: tuple[int, int]) -> Path:
    """Random colours at ``path`` (``size``: width, height); the same ``seed`` gives the same pixels."""
    noise = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    return path


def wait_until(
    predicate: Callable[[], T], timeout: float = 60.0, what: str = "condition", every: float = 0.05
) -> T:
    """Ask ``predicate`` every ``every`` s until it answers something true, and return that; fail after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def holds_within(condition: Callable[[], Any], timeout_s: float) -> bool:
    """Whether ``condition`` comes true within ``timeout_s`` (for tests asserting it does, or does not)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


#: An MCP generate_image call long enough to be cancelled while it runs (16 pictures of 200 steps).
LONG_MCP_CALL = {
    "prompt": "long",
    "model": "tiny-z-image",
    "width": 256,
    "height": 256,
    "steps": 200,
    "count": 16,
}


async def cancel_a_long_mcp_call(client: Any) -> None:
    """Call generate_image with :data:`LONG_MCP_CALL` over ``client`` (an MCP ClientSession) and cancel
    the call as soon as its progress reports steps (the job is running by then)."""
    import anyio

    stepping = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if total is not None:
            stepping.set()

    async with anyio.create_task_group() as group:

        async def call() -> None:
            await client.call_tool("generate_image", LONG_MCP_CALL, progress_callback=on_progress)

        group.start_soon(call)
        with anyio.fail_after(240):
            await stepping.wait()
        group.cancel_scope.cancel()
