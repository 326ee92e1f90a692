"""The model manager with the tiny models: one pipeline at a time, keep-in-RAM, failures, threads."""

from __future__ import annotations

import gc
import io
import json
import shutil
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from imagestudio.config import Settings, load_settings
from imagestudio.engine.loader import load_pipeline
from imagestudio.engine.manager import ModelManager
from imagestudio.errors import ModelNotAvailable
from imagestudio.job_requests import EditRequest, GenerateRequest
from imagestudio.registry import ModelSpec
from imagestudio.storage.inputs import InputLimits, read_input_image
from imagestudio.studio import Studio


class CountingLoader:
    """The real loader, counting calls and checking at each load that no earlier pipeline is still alive."""

    def __init__(self, *, expect_none_alive: bool = True) -> None:
        self.calls: list[str] = []
        self.pipelines: list[weakref.ref] = []
        self.expect_none_alive = expect_none_alive
        self.alive_at_load: list[int] = []

    def __call__(self, spec: ModelSpec, settings: Settings, quantization_config: Any = None) -> Any:
        gc.collect()
        self.alive_at_load.append(self.alive())
        self.calls.append(spec.id)
        pipe = load_pipeline(spec, settings, quantization_config)
        self.pipelines.append(weakref.ref(pipe))
        return pipe

    def alive(self) -> int:
        gc.collect()
        return sum(ref() is not None for ref in self.pipelines)


def settings_with(config_file: Path, text: str) -> Settings:
    config_file.write_text(config_file.read_text(encoding="utf-8") + text, encoding="utf-8")
    return load_settings(config_file)


def edit_request() -> EditRequest:
    buffer = io.BytesIO()
    array = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, "PNG")
    image = read_input_image(buffer.getvalue(), InputLimits(10**7, 10**7), name="a.png")
    return EditRequest.build(
        model="tiny-qwen-image-edit", prompt="swap", images=(image,), width=64, height=64, steps=2, seed=3
    )


def generate_request() -> GenerateRequest:
    return GenerateRequest.build(model="tiny-z-image", prompt="a cat", width=64, height=48, steps=2, seed=7)


def pixels(result) -> np.ndarray:
    with Image.open(result.images[0].path) as image:
        return np.asarray(image)


def test_generate_edit_generate_never_holds_two_pipelines(settings: Settings, tmp_path: Path) -> None:
    loader = CountingLoader()
    studio = Studio(settings, ModelManager(settings, "cpu", loader=loader))
    studio.generate(generate_request(), out_dir=tmp_path)
    assert loader.alive() == 1
    studio.edit(edit_request(), out_dir=tmp_path)
    assert loader.alive() == 1
    studio.generate(generate_request(), out_dir=tmp_path)
    assert loader.alive() == 1
    assert loader.calls == ["tiny-z-image", "tiny-qwen-image-edit", "tiny-z-image"]
    assert loader.alive_at_load == [0, 0, 0]  # the previous pipeline was gone before the next was read
    report = studio.manager.last_unload
    assert report is not None and report.model_id == "tiny-qwen-image-edit" and not report.kept_in_ram
    assert report.pipeline_bytes > 0 and report.before.accelerator_bytes is None  # CPU: no accelerator
    studio.manager.unload()
    assert loader.alive() == 0
    assert studio.manager.status()["resident"] is None


def test_keep_in_ram_switches_back_without_reading_files(
    config_file: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "z-copy"
    shutil.copytree(shared_models_dir / "tiny-z-image", folder)
    settings = settings_with(
        config_file, f"device: {{keep_in_ram: true}}\nmodels: {{tiny-z-image: {{path: {folder}}}}}\n"
    )
    loader = CountingLoader()
    studio = Studio(settings, ModelManager(settings, "cpu", loader=loader))
    first = pixels(studio.generate(generate_request(), out_dir=tmp_path))
    z_pipe = loader.pipelines[0]()
    studio.edit(edit_request(), out_dir=tmp_path)
    assert (studio.manager.loaded_id, studio.manager.parked_id) == ("tiny-qwen-image-edit", "tiny-z-image")
    assert studio.manager.last_unload is not None and studio.manager.last_unload.kept_in_ram
    folder.rename(tmp_path / "z-gone")  # its files are no longer there to read
    again = pixels(studio.generate(generate_request(), out_dir=tmp_path))
    assert loader.calls == ["tiny-z-image", "tiny-qwen-image-edit"]
    assert np.array_equal(first, again)
    with studio.manager.acquire("tiny-z-image") as loaded:
        assert loaded.pipe is z_pipe
    assert studio.manager.parked_id == "tiny-qwen-image-edit"
    del z_pipe, loaded
    studio.manager.unload()
    assert loader.alive() == 0


def test_without_keep_in_ram_switching_back_reads_the_files(
    config_file: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "z-copy"
    shutil.copytree(shared_models_dir / "tiny-z-image", folder)
    settings = settings_with(config_file, f"models: {{tiny-z-image: {{path: {folder}}}}}\n")
    studio = Studio(settings, ModelManager(settings, "cpu"))
    studio.generate(generate_request(), out_dir=tmp_path)
    studio.edit(edit_request(), out_dir=tmp_path)
    folder.rename(tmp_path / "z-gone")
    with pytest.raises(ModelNotAvailable, match="tiny-z-image is not on this machine"):
        studio.generate(generate_request(), out_dir=tmp_path)


def test_keep_in_ram_drops_when_ram_is_short(config_file: Path, tmp_path: Path) -> None:
    settings = settings_with(config_file, "device: {keep_in_ram: true}\n")
    loader = CountingLoader()
    manager = ModelManager(settings, "cpu", loader=loader, available_ram=lambda: 0)
    for model_id in ("tiny-z-image", "tiny-qwen-image-edit", "tiny-z-image"):
        with manager.acquire(model_id):
            pass
        assert manager.parked_id is None
    assert loader.calls == ["tiny-z-image", "tiny-qwen-image-edit", "tiny-z-image"]
    assert loader.alive() == 1
    assert manager.last_unload is not None and not manager.last_unload.kept_in_ram


def test_a_failed_load_leaves_the_manager_usable(
    config_file: Path, shared_models_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "z-broken"
    shutil.copytree(shared_models_dir / "tiny-z-image", folder)
    # Files that pass verification but cannot be built: the load itself fails, deep in diffusers.
    config_path = folder / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    config["dim"] = "thirty-two"
    config_path.write_text(json.dumps(config))
    import torch

    settings = settings_with(config_file, f"models: {{tiny-z-image: {{path: {folder}}}}}\n")
    loader = CountingLoader()
    manager = ModelManager(settings, "cpu", loader=loader)
    with manager.acquire("tiny-qwen-image-edit"):
        pass
    with pytest.raises(ModelNotAvailable) as info, manager.acquire("tiny-z-image"):
        pass
    assert "tiny-z-image could not be loaded; its files may be damaged or incomplete" in info.value.message
    assert "\n" not in info.value.message
    assert torch.get_default_dtype() == torch.float32  # diffusers' half-done switch is undone
    assert manager.loaded_id is None
    assert (
        loader.alive() == 0
    )  # the edit model was unloaded before the attempt and nothing half-built lingers
    with manager.acquire("tiny-qwen-image-edit") as loaded:
        assert loaded.spec.id == "tiny-qwen-image-edit"
    assert loader.alive() == 1


def test_threads_take_turns(settings: Settings) -> None:
    loader = CountingLoader()
    manager = ModelManager(settings, "cpu", loader=loader)
    inside = 0
    most_inside = 0
    wrong: list[str] = []
    guard = threading.Lock()
    start = threading.Barrier(3)

    def worker(order: tuple[str, ...]) -> None:
        nonlocal inside, most_inside
        start.wait()
        for model_id in order:
            with manager.acquire(model_id) as loaded:
                with guard:
                    inside += 1
                    most_inside = max(most_inside, inside)
                if loaded.spec.id != model_id or manager.loaded_id != model_id:
                    wrong.append(model_id)
                if loader.alive() != 1:
                    wrong.append(f"{loader.alive()} alive")
                with guard:
                    inside -= 1

    orders = [
        ("tiny-z-image", "tiny-qwen-image-edit"),
        ("tiny-qwen-image-edit", "tiny-z-image"),
        ("tiny-z-image",),
    ]
    threads = [threading.Thread(target=worker, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert most_inside == 1
    assert loader.alive() == 1
    manager.unload()
