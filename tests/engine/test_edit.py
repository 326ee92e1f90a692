"""Editing end to end on the tiny Qwen edit pipeline, through the studio service."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.engine.pipeline_calls import StepProgress
from imagestudio.errors import JobCancelled
from imagestudio.job_requests import EditRequest
from imagestudio.storage.inputs import InputImage, InputLimits, read_input_image
from imagestudio.storage.metadata import read_metadata

LIMITS = InputLimits(max_bytes=10_000_000, max_pixels=10_000_000)


def noise_png(seed: int, width: int = 64, height: int = 48) -> bytes:
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def inputs(*seeds: int, width: int = 64, height: int = 48) -> tuple[InputImage, ...]:
    return tuple(
        read_input_image(noise_png(seed, width, height), LIMITS, name=f"{seed}.png") for seed in seeds
    )


def tiny_edit(**fields: object) -> EditRequest:
    base: dict[str, object] = {
        "model": "tiny-qwen-image-edit",
        "prompt": "Picture 1 wears the hat from Picture 2: кот в шляпе",
        "images": inputs(1, 2),
        "width": 64,
        "height": 64,
        "steps": 2,
        "seed": 3,
    }
    return EditRequest.build(**{**base, **fields})


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def test_edit_writes_png_with_metadata_and_input_hashes(studio, out: Path) -> None:
    result = studio.edit(tiny_edit(), out_dir=out)
    [saved] = result.images
    assert saved.path.parent == out and saved.path.suffix == ".png"
    with Image.open(saved.path) as image:
        assert image.size == (64, 64)
    meta = read_metadata(saved.path)
    assert (meta["task"], meta["model"], meta["seed"], meta["steps"]) == (
        "edit",
        "tiny-qwen-image-edit",
        3,
        2,
    )
    assert (meta["true_cfg_scale"], meta["negative_prompt"]) == (4.0, " ")
    assert [item["name"] for item in meta["input_images"]] == ["1.png", "2.png"]
    assert meta["input_images"][1]["sha256"] == hashlib.sha256(noise_png(2)).hexdigest()
    assert meta["reference_vae_area"] == 64 * 64
    assert "3_picture-1-wears" in saved.path.name  # same naming rule as generate: time_seed_slug_tail


def test_edit_is_reproducible_and_the_seed_matters(studio, out: Path) -> None:
    first = studio.edit(tiny_edit(), out_dir=out).images[0].path
    again = studio.edit(tiny_edit(), out_dir=out).images[0].path
    other = studio.edit(tiny_edit(seed=4), out_dir=out).images[0].path
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


def test_each_input_image_matters(studio, out: Path) -> None:
    base = pixels(studio.edit(tiny_edit(), out_dir=out).images[0].path)
    swapped = pixels(studio.edit(tiny_edit(images=inputs(1, 5)), out_dir=out).images[0].path)
    assert not np.array_equal(base, swapped)


def test_default_size_follows_the_last_image(studio, out: Path) -> None:
    request = tiny_edit(width=None, height=None, images=(*inputs(1), *inputs(2, width=96, height=48)))
    [saved] = studio.edit(request, out_dir=out).images
    assert (saved.width, saved.height) == (96, 32)
    with Image.open(saved.path) as image:
        assert image.size == (96, 32)


def test_true_cfg_off_runs_half_the_transformer_calls(studio, out: Path) -> None:
    calls: list[int] = []
    with studio.manager.acquire("tiny-qwen-image-edit") as loaded:
        hook = loaded.pipe.transformer.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        studio.edit(tiny_edit(), out_dir=out)
        with_cfg = len(calls)
        calls.clear()
        studio.edit(tiny_edit(true_cfg_scale=1.0), out_dir=out)
    finally:
        hook.remove()
    assert (with_cfg, len(calls)) == (4, 2)


def test_count_progress_and_cancel(studio, out: Path) -> None:
    seen: list[StepProgress] = []
    batch = studio.edit(tiny_edit(count=2, seed=10), out_dir=out, on_step=seen.append).images
    assert [img.seed for img in batch] == [10, 11]
    assert [(s.image, s.step, s.steps) for s in seen] == [(1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)]
    cancel = threading.Event()
    with pytest.raises(JobCancelled):
        studio.edit(tiny_edit(steps=3), out_dir=out / "c", on_step=lambda _: cancel.set(), cancel=cancel)
    assert not (out / "c").exists()


# ------------------------------------------------------------------------------ reference area


def encoder_inputs(pipe) -> tuple[list[tuple[int, ...]], object]:
    shapes: list[tuple[int, ...]] = []
    handle = pipe.vae.encoder.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    return shapes, handle


def test_reference_area_setting_reaches_the_vae_without_touching_module_globals(studio, out: Path) -> None:
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_module

    before = (edit_module.VAE_IMAGE_SIZE, edit_module.CONDITION_IMAGE_SIZE)
    with studio.manager.acquire("tiny-qwen-image-edit") as loaded:
        shapes, handle = encoder_inputs(loaded.pipe)
    try:
        studio.edit(tiny_edit(images=inputs(1), reference_vae_area=128 * 128), out_dir=out)
        studio.edit(tiny_edit(images=inputs(1)), out_dir=out)
    finally:
        handle.remove()
    # 64x48 at 128² area: calculate_dimensions gives 160x96; at the tiny default 64²: 64x64.
    assert [shape[-2:] for shape in shapes] == [(96, 160), (64, 64)]
    assert (
        (edit_module.VAE_IMAGE_SIZE, edit_module.CONDITION_IMAGE_SIZE) == before == (1024 * 1024, 384 * 384)
    )


def test_reference_area_call_equals_the_pipeline_with_those_constants(
    studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parity: our per-call areas give the very pixels the stock pipeline gives with its constants set."""
    import torch
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_module

    from imagestudio.engine.reference_size import edit_call

    references = [item.image for item in inputs(1, 2)]
    kwargs = {"image": references, "prompt": "swap", "negative_prompt": " ", "true_cfg_scale": 4.0}
    kwargs |= {"num_inference_steps": 2, "height": 64, "width": 64, "output_type": "np"}
    with studio.manager.acquire("tiny-qwen-image-edit") as loaded:
        ours = edit_call(loaded.pipe, 96 * 96, 80 * 80)(**kwargs, generator=torch.Generator().manual_seed(1))
        monkeypatch.setattr(edit_module, "VAE_IMAGE_SIZE", 96 * 96)
        monkeypatch.setattr(edit_module, "CONDITION_IMAGE_SIZE", 80 * 80)
        stock = loaded.pipe(**kwargs, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(ours.images, stock.images)


def test_concurrent_edits_with_different_areas_do_not_interfere(settings) -> None:
    """Two pipelines in two threads, started together, each with its own area: each encodes at its own
    (assigning the module constants instead would let one thread's value leak into the other's call)."""
    import torch

    from imagestudio.engine.loader import load_pipeline
    from imagestudio.engine.reference_size import edit_call
    from imagestudio.registry import get_model

    spec = get_model("tiny-qwen-image-edit")
    barrier = threading.Barrier(2)
    seen: dict[int, list[tuple[int, ...]]] = {}
    errors: list[BaseException] = []

    # Loaded one after the other: from_pretrained itself is not thread-safe (transformers switches torch's
    # default dtype while it builds a model), which is one reason the model manager serialises loads.
    pipes = {area: load_pipeline(spec, settings) for area in (64 * 64, 128 * 128)}

    def run(area: int) -> None:
        pipe = pipes[area]
        shapes, _ = encoder_inputs(pipe)
        seen[area] = shapes
        try:
            barrier.wait()
            for _ in range(3):
                edit_call(pipe, area, 64 * 64)(
                    image=[item.image for item in inputs(1)],
                    prompt="x",
                    num_inference_steps=2,
                    true_cfg_scale=1.0,
                    height=32,
                    width=32,
                    output_type="np",
                    generator=torch.Generator().manual_seed(0),
                )
        except Exception as exc:  # noqa: BLE001 - surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(area,)) for area in (64 * 64, 128 * 128)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {area: {shape[-2:] for shape in shapes} for area, shapes in seen.items()} == {
        64 * 64: {(64, 64)},
        128 * 128: {(96, 160)},
    }
