"""What every benchmark gets: repeat counts, a private work folder, and app settings built for it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.models import Size
    from imagestudio.config import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC = REPO_ROOT / "src"

#: The prompt every benchmark uses: Cyrillic, as many users write, so the UTF-8 paths are exercised.
PROMPT = "кот в шляпе сидит на красном стуле у окна"


@dataclass
class BenchContext:
    """Options and shared state of one benchmark run.

    ``workdir`` holds everything a run creates (an isolated app home, tiny and larger models, outputs):
    nothing touches the user's ``~/.imagestudio``. Reusing a ``workdir`` reuses the models built there.
    """

    workdir: Path
    repeat: int = 7
    warmup: int = 1
    #: (side, steps) cases of the warm-overhead benchmark.
    overhead_cases: list[tuple[int, int]] = field(default_factory=lambda: [(64, 2), (512, 8), (1024, 8)])
    #: Size of the random-weight Z-Image the load-memory and switch benchmarks use ("small" in tests).
    model_size: Size = "large"
    #: Weight storages the load-memory benchmark measures.
    load_storages: tuple[str, ...] = ("bfloat16", "float32")
    log: Any = None

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def models_dir(self) -> Path:
        return self.workdir / "models"

    @property
    def outputs_dir(self) -> Path:
        return self.workdir / "outputs"

    def say(self, message: str) -> None:
        """Progress for the person watching (to stderr, so ``--json -`` style use stays clean)."""
        if self.log is not None:
            self.log(message)

    def settings(self, overrides: dict[str, Any] | None = None) -> Settings:
        """App settings rooted in the work folder, CPU/GPU picked as the app would, plus ``overrides``."""
        from imagestudio.config import load_settings

        base: dict[str, Any] = {
            "storage": {"models_dir": str(self.models_dir), "outputs_dir": str(self.outputs_dir)}
        }
        if overrides:
            base = merged(base, overrides)
        self.home.mkdir(parents=True, exist_ok=True)
        # No config file, no environment: the run must not pick up the user's config.yaml.
        return load_settings(None, base, environ={"IMAGESTUDIO_HOME": str(self.home)}, cwd=self.workdir)

    def z_image(self, storage_dtype: str = "bfloat16") -> Path:
        """The random-weight Z-Image of ``model_size`` with weights stored in ``storage_dtype``."""
        from benchmarks.models import ensure_z_image

        return ensure_z_image(self.models_dir, self.model_size, storage_dtype)

    def tiny_model(self, model_id: str) -> Path:
        from imagestudio.models.tiny import ensure_tiny_model

        return ensure_tiny_model(model_id, self.models_dir / model_id)

    def write_config(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text, encoding="utf-8")
        return path


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``, nested mappings merged key by key."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child Pythons: the source tree importable, offline, UTF-8, unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env.pop("IMAGESTUDIO_CONFIG", None)
    # Bytecode cached as on any installed copy (pip compiles a wheel's modules; an editable checkout
    # writes them on its first run). Left set, every child recompiles the ~200 source modules of the
    # checkout while the plain side's libraries load theirs precompiled: ~0.1 s that no user pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


PYTHON = sys.executable
