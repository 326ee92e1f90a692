"""The real models' shipped counts: exactly what instantiating their configs on meta measures, read without
torch, and ignored once the configs they were measured from change."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

from imagestudio.memory.sizes import (
    SIZES_FILE,
    configs_digest,
    measured_sizes,
    packaged_sizes,
    read_sizes_file,
)
from imagestudio.models.configs import COMPONENTS, component_configs, packaged_config_dir
from imagestudio.registry import MODELS
from tests.conftest import PYTHON, cli_env

REAL = [spec.id for spec in MODELS.values() if packaged_config_dir(spec.id) is not None]


@pytest.mark.parametrize("model_id", REAL)
def test_the_shipped_counts_are_what_the_pinned_libraries_measure(model_id: str) -> None:
    spec = MODELS[model_id]
    shipped = packaged_sizes(spec)
    assert shipped is not None, f"regenerate {model_id}'s {SIZES_FILE} with write_packaged_sizes"
    assert shipped == measured_sizes(spec)


def test_counts_measured_from_other_configs_are_not_used(tmp_path: Path) -> None:
    spec = MODELS["z-image-turbo"]
    configs = component_configs(spec)
    record = {
        "configs_sha256": configs_digest(configs),
        "components": {name: asdict(measured_sizes(spec).components[name]) for name in COMPONENTS},
    }
    path = tmp_path / SIZES_FILE
    path.write_text(json.dumps(record), encoding="utf-8")
    assert read_sizes_file(path, spec.id, configs) == measured_sizes(spec)

    changed = json.loads(json.dumps(configs))
    changed["transformer"]["n_layers"] = changed["transformer"]["n_layers"] + 1
    assert read_sizes_file(path, spec.id, changed) is None
    assert read_sizes_file(tmp_path / "missing.json", spec.id, configs) is None


def test_listings_and_plans_of_real_models_size_them_without_torch() -> None:
    """A listing (``models list``) and the planner's sizes must not import torch or diffusers for them."""
    code = (
        "import sys\n"
        "from imagestudio.memory.sizes import model_sizes\n"
        "from imagestudio.memory.variant_sizes import listing_sizes\n"
        "from imagestudio.registry import MODELS\n"
        f"for model_id in {REAL!r}:\n"
        "    assert model_sizes(MODELS[model_id]).transformer.params > 10**9\n"
        "    assert listing_sizes(MODELS[model_id]).text_encoder.params > 10**9\n"
        "print(sorted(name for name in ('torch', 'diffusers', 'transformers') if name in sys.modules))\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
