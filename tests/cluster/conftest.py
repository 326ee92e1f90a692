"""The cluster tests: a real Ray runtime on 127.0.0.1 with worker actors on CPU and the tiny models.

They start Ray (seconds) and kill processes, so they run as their own pytest invocation, outside xdist,
and only when asked (``test_cluster_queue.py``, the head's queue over stand-in workers, needs no Ray
and runs always):

    IMAGESTUDIO_CLUSTER_TESTS=1 python -m pytest -p no:randomly -n 0 tests/cluster

Everything stays on loopback (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` before Ray is imported), token
auth is on with a random token kept in the environment, and HOME points into the test's temporary
folder, so no token or session file is left in the user's home.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

ENABLE_ENV = "IMAGESTUDIO_CLUSTER_TESTS"
HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"


#: Tests here that need no Ray (the head's queue over stand-in workers): always collected.
WITHOUT_RAY = frozenset({"test_cluster_queue.py"})


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Skipped from the default run (which must never import Ray); collected when the env var is set.
    if os.environ.get(ENABLE_ENV) != "1" and collection_path.parent == HERE:
        return (collection_path.name.startswith("test_") and collection_path.name not in WITHOUT_RAY) or None
    return None


@pytest.fixture(scope="session")
def ray_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Loopback-only Ray with a throwaway token and HOME; set before the first ``import ray``."""
    home = tmp_path_factory.mktemp("ray-home")
    keys = ("HOME", "PYTHONPATH", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")
    saved = {key: os.environ.get(key) for key in keys}
    # Ray's worker processes inherit this environment: they must import this checkout's package.
    pythonpath = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH", "")]))
    os.environ.update(
        PYTHONPATH=pythonpath,
        HOME=str(home),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
