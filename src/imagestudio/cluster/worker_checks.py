"""What ``imagestudio worker`` checks before it runs ``ray start``, so each failure is one line.

Ray's own way to report these is a traceback (no token), ``FileNotFoundError: 'ray'`` (a venv that is not
activated) or retrying for minutes with its log lines (a head that is not there). Checked here instead:

* Ray's launcher is the ``ray`` script installed beside the running Python (the same environment, whether
  or not it is activated), else the one on ``PATH``;
* a box joining a head has a token: ``--token-file``, ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``, or Ray's
  default ``~/.ray/auth_token``;
* the head's port answers within :data:`HEAD_WAIT_S` seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from imagestudio.errors import ConfigError

#: How long a box waits for the head's port to answer before it gives up (a head just started on
#: another machine may need a few seconds).
HEAD_WAIT_S = 15.0


def ray_launcher() -> str:
    """The ``ray`` command of this Python's environment (found even when the venv is not activated)."""
    beside = Path(sys.executable).parent / ("ray.exe" if os.name == "nt" else "ray")
    if beside.is_file():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise ConfigError(
            f"Ray's launcher (ray) is neither beside this Python ({Path(sys.executable).parent}) nor on "
            'PATH: pip install "imagestudio[cluster]" into this environment'
        )
    return found


def require_token(token_file: Path | None, environ: Mapping[str, str] | None = None) -> None:
    """A box joining a head must have the head's token; say where to get it, before Ray complains."""
    env = os.environ if environ is None else environ
    if token_file is not None or env.get("RAY_AUTH_TOKEN") or env.get("RAY_AUTH_TOKEN_PATH"):
        return
    if (Path(env.get("HOME") or Path.home()) / ".ray" / "auth_token").is_file():
        return
    raise ConfigError(
        "this box has no token for the head: copy the head's ~/.ray/auth_token here and pass it with "
        "--token-file",
        param="--token-file",
    )


def wait_for_head(address: str, wait_s: float | None = None) -> None:
    """Return once ``HOST:PORT`` accepts a connection; one line if it does not within ``wait_s``
    (default :data:`HEAD_WAIT_S`)."""
    wait_s = HEAD_WAIT_S if wait_s is None else wait_s
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=min(3.0, wait_s)):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
        if time.monotonic() >= deadline:
            raise ConfigError(
                f"the head at {address} did not answer within {wait_s:g} s ({reason}): is "
                "`imagestudio worker --head` running there, and is its port open on your network?",
                param="--connect",
            )
        time.sleep(0.5)
