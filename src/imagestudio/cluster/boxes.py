"""``imagestudio worker``: the ``ray start`` command (and its environment) that puts a box in the cluster.

Pure functions (no Ray import), so what a box would run is testable without starting anything. A box
offers one worker slot per GPU (the :data:`~imagestudio.cluster.runtime.SLOT` resource; the head
starts one actor per slot) or one CPU slot when it has none.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from imagestudio.cluster.runtime import SLOT
from imagestudio.errors import ConfigError

#: Set on a box so its workers read the box's own config (see ray_worker.WORKER_CONFIG_ENV).
WORKER_CONFIG_ENV = "IMAGESTUDIO_WORKER_CONFIG"
DEFAULT_PORT = 6379
_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class StartCommand:
    argv: list[str]
    env: dict[str, str]

    def shown(self) -> str:
        """The command as a person would type it (the environment first); no secrets in it."""
        env = " ".join(f"{key}={value}" for key, value in sorted(self.env.items()))
        args = " ".join(_quote(arg) for arg in self.argv)
        return f"{env} {args}".strip()


def versions() -> tuple[str, str]:
    """This box's Python and Ray versions (Ray's from its metadata: importing Ray is slow)."""
    try:
        ray_version = metadata.version("ray")
    except metadata.PackageNotFoundError as exc:
        raise ConfigError('Ray is not installed on this box: pip install "imagestudio[cluster]"') from exc
    return platform.python_version(), ray_version


def check_address(address: str) -> str:
    """``HOST:PORT`` or a one-line error."""
    match = _ADDRESS.match(address.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            f"--connect wants the head's HOST:PORT (like 192.168.1.10:{DEFAULT_PORT}), not {address!r}"
        )
    return address.strip()


def start_command(
    *,
    connect: str | None,
    head_port: int | None,
    slots: int,
    gpus: int,
    node_ip: str | None = None,
    token_file: Path | None = None,
    config: Path | None = None,
) -> StartCommand:
    """``ray start`` for a box joining ``connect`` (or, with ``head_port``, for the head's own node)."""
    if (connect is None) == (head_port is None):
        raise ConfigError("say where this box goes: --connect HEAD:PORT, or --head on the studio's machine")
    ray = shutil.which("ray") or "ray"
    argv = [ray, "start"]
    if connect is not None:
        argv += ["--address", check_address(connect)]
    else:
        argv += ["--head", "--port", str(head_port), "--include-dashboard", "false"]
    argv += ["--resources", json.dumps({SLOT: slots}), "--num-gpus", str(gpus), "--block"]
    if node_ip:
        argv += ["--node-ip-address", node_ip]
    env = {"RAY_AUTH_MODE": "token"}
    if token_file is not None:
        env["RAY_AUTH_TOKEN_PATH"] = str(token_file.expanduser().resolve())
    if config is not None:
        env[WORKER_CONFIG_ENV] = str(config.expanduser().resolve())
    return StartCommand(argv, env)


def ensure_head_token(token_file: Path | None, home: Path | None = None) -> Path:
    """The head's auth token file, made (random, owner-only) when missing: ``ray start --head`` with
    token auth refuses to start without one, and the boxes need a copy of it to join."""
    import os
    import secrets

    path = token_file or (home or Path.home()) / ".ray" / "auth_token"
    path = path.expanduser()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32))
        made.replace(path)
    return path.resolve()


def box_environment(
    simulate_vram: float | None = None, simulate_ram: float | None = None, dead_after_s: float | None = None
) -> dict[str, str]:
    """Extra environment for ``ray start``: what the box's worker actors plan for, and (on the head)
    how soon a silent box is counted dead.

    Ray's head counts a node dead after ``health_check_failure_threshold`` failed checks, each taking
    up to ``health_check_timeout_ms`` plus ``health_check_period_ms``; its defaults (5, 10 s, 3 s) take
    30-65 s for a box whose link went down. ``dead_after_s`` sets 1 s checks and 1 s timeouts, so the
    head notices after about that many seconds (at the cost of counting a box dead that stalls as long).
    """
    from imagestudio.cluster.capacity import SIMULATE_ENV

    env: dict[str, str] = {}
    if simulate_vram is not None or simulate_ram is not None:
        env[SIMULATE_ENV] = (
            f"{'' if simulate_vram is None else simulate_vram},{'' if simulate_ram is None else simulate_ram}"
        )
    if dead_after_s is not None:
        env.update(
            RAY_health_check_period_ms="1000",
            RAY_health_check_timeout_ms="1000",
            RAY_health_check_failure_threshold=str(max(1, round(dead_after_s / 2))),
        )
    return env


def explain_failure(output: str, python: str, ray: str) -> str | None:
    """A one-line reason for a failed ``ray start``, for the failures people hit; None otherwise."""
    text = output.lower()
    if "version mismatch" in text or ("version" in text and "does not match" in text):
        return (
            f"the head runs other Python/Ray versions than this box (Python {python}, Ray {ray}); every "
            f'box needs the same ones: pip install "ray[default]=={ray}" on a Python {python} everywhere'
        )
    if "authentication" in text or "auth_token" in text or "unauthenticated" in text:
        return (
            "the head refused this box's token: copy the head's ~/.ray/auth_token here and pass it "
            "with --token-file"
        )
    if "unable to connect" in text or "failed to connect" in text or "timed out" in text:
        return (
            "could not reach the head: check the address and that its ports are open on your private network"
        )
    return None


def default_slots() -> tuple[int, int]:
    """(worker slots, GPUs): one per CUDA device, or one CPU worker when there is none."""
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a dependency
        gpus = 0
    return max(1, gpus), gpus


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' "{}') else arg
