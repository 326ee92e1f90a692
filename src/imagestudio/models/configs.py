"""The real models' component configs, shipped with the package so a size is known before any download.

``imagestudio/model_configs/<model id>/<component>.json`` holds the ``config.json`` of each of the three
big components (see :mod:`imagestudio.memory.sizes` for where each one comes from). The memory planner
sizes models from them on the meta device; the benchmarks build full-size random-weight models from them.
Other models (the tiny ones) are read from their own folder's configs.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from imagestudio.registry import ModelSpec

#: The components whose configs ship, and whose size is the model's size.
COMPONENTS = ("transformer", "text_encoder", "vae")


def packaged_config_dir(model_id: str) -> Path | None:
    """Where the real configs of ``model_id`` ship inside the package, if they do."""
    folder = Path(str(resources.files("imagestudio") / "model_configs" / model_id))
    return folder if (folder / "transformer.json").is_file() else None


def component_configs(spec: ModelSpec, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """The three component configs: the packaged real ones, else those of the model's ``folder``."""
    packaged = packaged_config_dir(spec.id)
    paths = (
        {name: packaged / f"{name}.json" for name in COMPONENTS}
        if packaged is not None
        else {name: folder / name / "config.json" for name in COMPONENTS}
        if folder is not None
        else None
    )
    if paths is None:
        raise ValueError(f"no stored configs for {spec.id}; size it from its model folder")
    return {name: json.loads(path.read_text(encoding="utf-8")) for name, path in paths.items()}
