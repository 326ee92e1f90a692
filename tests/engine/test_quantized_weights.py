"""Quantized weight variants through the one load path: GGUF and SDNQ on the tiny models.

Each test runs the real loaders (diffusers' ``from_single_file`` with a GGUF config, ``from_pretrained``
of SDNQ folders) on the tiny variants written from the tiny models' own weights.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.config import DeviceSettings, Settings, StorageSettings, load_settings
from imagestudio.engine.loader import load_pipeline, load_planned
from imagestudio.errors import InvalidRequest, JobCancelled, ModelNotAvailable
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.job_requests import EditRequest, EnhanceRequest, GenerateRequest
from imagestudio.lora_refs import parse_lora
from imagestudio.memory.activations import Workload
from imagestudio.memory.apply import resident_components
from imagestudio.memory.plan import Environment
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.models.variants import variant_files
from imagestudio.registry import MODELS
from imagestudio.storage.inputs import InputLimits, read_input_image
from tests.tiny_lora import build_tiny_lora

GIB = 1024**3


def z_request(weights: str | None, **extra: object) -> GenerateRequest:
    fields: dict[str, object] = {
        "model": "tiny-z-image", "prompt": "a cat", "width": 64, "height": 48, "steps": 2, "seed": 7
    }  # fmt: skip
    return GenerateRequest.build(**{**fields, **extra}, weights=weights)


def edit_request(weights: str | None) -> EditRequest:
    import io

    buffer = io.BytesIO()
    array = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, "PNG")
    image = read_input_image(buffer.getvalue(), InputLimits(10**7, 10**7), name="a.png")
    return EditRequest.build(
        model="tiny-qwen-image-edit", prompt="swap", images=(image,), width=64, height=64, steps=2, seed=3,
        weights=weights,
    )  # fmt: skip


def saved(result) -> tuple[np.ndarray, dict]:
    with Image.open(result.images[0].path) as image:
        return np.asarray(image.convert("RGB")).astype(np.float64), json.loads(image.info["imagestudio"])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.slow
def test_generate_with_gguf_variants_records_the_weights_and_the_file_hash(
    studio, settings, tmp_path
) -> None:
    reference, meta = saved(studio.generate(z_request(None), out_dir=tmp_path))
    assert meta["weights"] == "bf16"
    other_seed, _ = saved(studio.generate(z_request(None, seed=8), out_dir=tmp_path))
    for name in ("gguf-q8_0", "gguf-q4_0"):
        image, meta = saved(studio.generate(z_request(name), out_dir=tmp_path))
        assert meta["weights"] == name
        files = variant_files(MODELS["tiny-z-image"], name, settings)
        assert files is not None and files.gguf_file is not None
        digest = hashlib.sha256(files.gguf_file.read_bytes()).hexdigest()
        assert meta["model_hash"] == digest[:10]
        assert studio.manager.resident.plan.variant == name
        # The same picture, slightly perturbed: nearer to bf16 than another seed is.
        assert psnr(image, reference) > psnr(other_seed, reference) + 3, name
    q8, _ = saved(studio.generate(z_request("gguf-q8_0"), out_dir=tmp_path))
    q4, _ = saved(studio.generate(z_request("gguf-q4_0"), out_dir=tmp_path))
    assert psnr(q8, reference) > psnr(q4, reference)


@pytest.mark.slow
def test_edit_with_sdnq_uint4_runs_the_quantized_transformer_and_encoder(studio, tmp_path) -> None:
    image, meta = saved(studio.edit(edit_request("sdnq-uint4"), out_dir=tmp_path))
    assert meta["weights"] == "sdnq-uint4" and meta["text_encoder_weights"] == "uint4"
    pipe = studio.manager.resident.pipe
    for component in (pipe.transformer, pipe.text_encoder):
        assert any(type(m).__name__ == "SDNQLinear" for m in component.modules())
    assert image.std() > 0


@pytest.mark.slow
def test_config_weights_and_on_the_fly_encoder_quantization(config_file: Path, tmp_path: Path) -> None:
    """``models.<id>.weights`` picks the variant; a GGUF variant whose plan wants an int8 text encoder
    gets the base folder's bf16 encoder quantized by SDNQ while it loads."""
    from imagestudio.memory.plan import MemoryPlan

    config_file.write_text(
        config_file.read_text(encoding="utf-8") + "models:\n  tiny-z-image: {weights: gguf-q4_0}\n",
        encoding="utf-8",
    )
    settings = load_settings(config_file)
    spec = MODELS["tiny-z-image"]
    planner = MemoryPlanner(settings, device="cpu")
    from imagestudio.engine.weights import plan_with_weights

    plan: MemoryPlan = plan_with_weights(planner.plan(spec, Workload(64, 48)), spec, settings)
    assert plan.variant == "gguf-q4_0" and plan.text_encoder_weights == "bf16"
    pipe = load_planned(load_pipeline, spec, settings, "cpu", replace(plan, text_encoder_weights="int8"))
    assert any(
        type(m).__name__ == "GGUFLinear" or "GGUF" in type(m).__name__ for m in pipe.transformer.modules()
    )
    assert any(type(m).__name__ == "SDNQLinear" for m in pipe.text_encoder.modules())


def test_unknown_weights_is_one_line_before_anything_loads(settings) -> None:
    with pytest.raises(InvalidRequest, match=r"no weights 'gguf-q5_k_s'.*valid: auto, bf16") as caught:
        z_request("gguf-q5_k_s").resolved(settings)
    assert "\n" not in str(caught.value)


def test_stored_quantized_variant_refuses_on_load_quantization(config_file: Path, tmp_path: Path) -> None:
    """device.weights fp8 cannot apply to a file already stored quantized: refused when planned."""
    config_file.write_text(
        config_file.read_text(encoding="utf-8") + "device: {weights: fp8}\n", encoding="utf-8"
    )
    from imagestudio.studio import Studio

    studio = Studio(load_settings(config_file))
    with pytest.raises(InvalidRequest, match=r"device\.weights fp8 cannot apply to tiny-z-image gguf-q8_0"):
        studio.generate(z_request("gguf-q8_0"), out_dir=tmp_path)
    assert studio.manager.loaded_id is None


def test_missing_real_variant_names_the_download_command(tmp_path: Path) -> None:
    settings = Settings(storage=StorageSettings(models_dir=tmp_path / "models"))
    with pytest.raises(ModelNotAvailable) as caught:
        load_pipeline(MODELS["z-image-turbo"], settings, weights="gguf-q4_k_m")
    message = str(caught.value)
    assert "jayn7/Z-Image-Turbo-GGUF's z_image_turbo-Q4_K_M.gguf" in message
    assert "imagestudio models download z-image-turbo --weights gguf-q4_k_m" in message


def forced_plan(models_dir: Path, model_id: str, profile: str, variant: str):
    """A 24 GB card's plan with ``profile`` forced, for ``variant``, made runnable on the CPU."""
    cpu = Hardware("cpu", "test", 0, 0, True, None, 64 * GIB, 64 * GIB, None)
    settings = Settings(
        device=DeviceSettings(memory_profile=profile), storage=StorageSettings(models_dir=models_dir)
    )
    planner = MemoryPlanner(settings, simulate_hardware(cpu, 24), "cpu", Environment())
    spec = MODELS[model_id]
    from imagestudio.engine.weights import plan_with_weights

    return settings, plan_with_weights(planner.plan(spec, Workload(64, 64)), spec, settings, variant)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gguf-q4_0", "sdnq-int8"])
def test_offload_with_a_quantized_transformer_matches_full(shared_models_dir: Path, variant: str) -> None:
    import torch

    images = {}
    for profile in ("full", "model_offload", "group_offload"):
        settings, plan = forced_plan(shared_models_dir, "tiny-z-image", profile, variant)
        assert plan.profile == profile and plan.variant == variant
        pipe = load_planned(load_pipeline, MODELS["tiny-z-image"], settings, "cpu", plan)
        if profile != "full":
            assert any("hooks" in where for where in resident_components(pipe).values())
        out = pipe(
            prompt="a cat", width=64, height=64, guidance_scale=0.0, num_inference_steps=2,
            generator=torch.Generator("cpu").manual_seed(7), output_type="np",
        )  # fmt: skip
        images[profile] = out.images[0]
    for profile in ("model_offload", "group_offload"):
        np.testing.assert_allclose(images[profile], images["full"], atol=1e-6, err_msg=profile)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gguf-q8_0", "sdnq-int8"])
def test_a_lora_applies_to_a_quantized_transformer(studio, shared_models_dir, tmp_path, variant) -> None:
    lora = build_tiny_lora(shared_models_dir / "tiny-z-image", "z-image", tmp_path / "lora")
    plain, _ = saved(studio.generate(z_request(variant), out_dir=tmp_path))
    with_lora, meta = saved(
        studio.generate(z_request(variant, loras=(parse_lora(f"{lora}:1.0"),)), out_dir=tmp_path)
    )
    assert meta["weights"] == variant and meta["loras"]
    assert np.abs(with_lora - plain).mean() > 1.0  # the adapter changed the picture
    again, _ = saved(studio.generate(z_request(variant), out_dir=tmp_path))
    np.testing.assert_array_equal(again, plain)  # and left no trace once removed


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["gguf-q8_0", "sdnq-uint4"])
def test_a_lora_applies_to_a_quantized_qwen_edit_transformer(
    studio, shared_models_dir, tmp_path, variant
) -> None:
    """The real main case is 2511's Lightning LoRA on a GGUF/SDNQ transformer: the same path, tiny."""
    lora = build_tiny_lora(shared_models_dir / "tiny-qwen-image-edit", "qwen-image-edit", tmp_path / "lora")
    plain, _ = saved(studio.edit(edit_request(variant), out_dir=tmp_path))
    with_lora_request = edit_request(variant).model_copy(update={"loras": (parse_lora(f"{lora}:1.0"),)})
    with_lora, meta = saved(studio.edit(with_lora_request, out_dir=tmp_path))
    assert meta["weights"] == variant and meta["loras"]
    # The adapter changed the picture (the tiny edit model's LoRA moves fewer pixels than Z-Image's).
    assert np.abs(with_lora - plain).mean() > 0.2
    again, _ = saved(studio.edit(edit_request(variant), out_dir=tmp_path))
    np.testing.assert_array_equal(again, plain)  # and left no trace once removed


@pytest.mark.slow
def test_previews_and_cancel_with_a_gguf_transformer(studio, tmp_path) -> None:
    steps: list[int] = []
    cancel = threading.Event()

    def on_step(progress) -> None:
        steps.append(progress.step)
        assert progress.latents is not None  # what the preview is drawn from
        cancel.set()

    with pytest.raises(JobCancelled):
        studio.generate(z_request("gguf-q4_0", steps=4), out_dir=tmp_path, on_step=on_step, cancel=cancel)
    assert steps and len(steps) < 4
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_id", "variant"), [("tiny-z-image", "sdnq-int8"), ("tiny-qwen-image-edit", "sdnq-uint4")]
)
def test_improve_prompt_with_a_quantized_text_encoder(studio, settings, model_id: str, variant: str) -> None:
    request = EnhanceRequest.build(prompt="a cat", model=model_id, weights=variant, seed=1).resolved(settings)
    result = studio.enhance(request)
    assert result.original_prompt == "a cat"
    assert isinstance(result.prompt, str) and result.prompt


def test_the_weights_travel_with_a_request_to_a_cluster_worker(settings) -> None:
    """Workers get the request object itself (pickled by Ray): the variant is part of it."""
    request = z_request("gguf-q4_0").resolved(settings)
    copy = pickle.loads(pickle.dumps(request))
    assert copy.weights == "gguf-q4_0" and copy == request
