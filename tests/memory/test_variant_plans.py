"""The planner and the weight variants: exact bytes from GGUF headers, the small-card targets, choosing
among present variants, stepping down to a smaller one, refusing what cannot run (all simulated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagestudio.config import DeviceSettings, Settings
from imagestudio.errors import ConfigError
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.plan import Environment, MemoryPlan
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.memory.variant_sizes import (
    encoder_bytes,
    gguf_tensor_bytes,
    safetensors_bytes,
)
from imagestudio.registry import MODELS, ModelSpec

GIB = 1024**3
BOTH = Environment(variants=frozenset({"gguf", "sdnq"}))
Z = MODELS["z-image-turbo"]
QWEN = MODELS["qwen-image-edit-2511"]
ALL_Z = tuple(v.name for v in Z.weight_variants)
ALL_QWEN = tuple(v.name for v in QWEN.weight_variants)


def machine(vram_gb: float, ram_gb: float) -> Hardware:
    cpu = Hardware("cpu", "test CPU", 0, 0, True, None, int(ram_gb * GIB), int(ram_gb * GIB), None)
    return simulate_hardware(cpu, vram_gb, ram_gb)


def planner(
    vram_gb: float,
    ram_gb: float,
    present: dict[str, Path] | None = None,
    environment: Environment = BOTH,
    device: dict | None = None,
    settings: Settings | None = None,
) -> MemoryPlanner:
    settings = settings or Settings(device=DeviceSettings(**(device or {})))
    return MemoryPlanner(
        settings,
        machine(vram_gb, ram_gb),
        "cuda",
        environment,
        locate_variants=lambda spec, _settings: dict(present or {}),
    )


def write_gguf(path: Path, tensors: dict[str, tuple[np.ndarray, str]]) -> int:
    """A GGUF file with ``tensors`` quantized as named; returns the bytes of the quantized data written."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "test")
    written = 0
    for name, (array, kind) in tensors.items():
        qtype = getattr(gguf.GGMLQuantizationType, kind)
        data = gguf.quants.quantize(array, qtype)
        written += data.nbytes
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return written


def test_gguf_bytes_come_from_the_header_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "blocks.0.attn.weight": (rng.standard_normal((64, 256), dtype=np.float32), "Q4_0"),
        "blocks.0.mlp.weight": (rng.standard_normal((128, 64), dtype=np.float32), "Q8_0"),
        "norm.weight": (rng.standard_normal((64,), dtype=np.float32), "F32"),
    }
    path = tmp_path / "mixed.gguf"
    written = write_gguf(path, tensors)
    assert gguf_tensor_bytes(path) == written
    # Q4_0 is 18 bytes per 32 weights, Q8_0 34: the header, not the element count, decides.
    assert written == 64 * 256 // 32 * 18 + 128 * 64 // 32 * 34 + 64 * 4
    assert path.stat().st_size > written  # the header itself is not counted


def test_safetensors_bytes_from_headers(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(10, 4, dtype=torch.uint8), "b": torch.zeros(3, dtype=torch.bfloat16)},
              str(tmp_path / "x.safetensors"))  # fmt: skip
    assert safetensors_bytes(tmp_path) == 40 + 6


def test_a_present_gguf_file_is_planned_at_its_header_size(tmp_path: Path) -> None:
    """Planning Z-Image with a (small, made-up) file in place of the published Q4_K_M: the plan's
    transformer bytes are the file's tensor bytes, not the registry's 4.98 GB."""
    path = tmp_path / "z_image_turbo-Q4_K_M.gguf"
    written = write_gguf(path, {"x": (np.ones((256, 256), dtype=np.float32), "Q8_0")})
    present = {"gguf-q4_k_m": path}
    chosen = planner(24, 64, present).plan(Z)
    assert chosen.variant == "gguf-q4_k_m"  # the only variant here
    assert chosen.transformer_bytes == written
    published = planner(24, 64).plan(Z, variants=("gguf-q4_k_m",))
    assert published.transformer_bytes == Z.variant("gguf-q4_k_m").transformer_bytes


@pytest.mark.parametrize(("spec", "names"), [(Z, ALL_Z), (QWEN, ALL_QWEN)])
def test_eight_gb_card_with_32_gb_ram_runs_both_models(spec: ModelSpec, names: tuple[str, ...]) -> None:
    before = planner(8, 32, environment=Environment()).plan(spec)  # bf16 files, no quantized encoder
    best = planner(8, 32).plan(spec, variants=names)
    assert best.fits, best.why
    assert best.predicted_peak_vram_gb <= 8 - DeviceSettings().vram_reserve_gb
    if spec is QWEN:
        assert not before.fits  # the reason for the variants: bf16 needs more RAM than 32 GB
    assert best.transfer_gb_per_image < before.transfer_gb_per_image


def test_eight_gb_card_with_16_gb_ram() -> None:
    z = planner(8, 16).plan(Z, variants=ALL_Z)
    assert z.fits, z.why
    qwen = planner(8, 16).plan(QWEN, variants=ALL_QWEN)
    low = {"gguf-q3_k_m"}
    # Either a ≤ Q3 file fits, or the plan says why not in terms of RAM.
    assert (qwen.fits and qwen.variant in low) or ("RAM" in qwen.why and not qwen.fits_ram), qwen.why


def test_z_image_q4_k_m_stays_whole_on_an_eight_gb_card() -> None:
    bf16 = planner(8, 32, environment=Environment()).plan(Z, variants=("bf16",))
    q4 = planner(8, 32).plan(Z, variants=("gguf-q4_k_m",))
    assert bf16.transfer_gb_per_image > 90  # streamed block by block: ~99 GB per image
    assert q4.fits and q4.profile in ("full", "model_offload"), q4.describe()
    assert q4.transfer_gb_per_image < 10
    # The text encoder is quantized on the fly only because bf16 does not fit the card by itself.
    assert q4.text_encoder_weights != "bf16"


def test_the_text_encoder_stays_bf16_where_it_fits() -> None:
    chosen = planner(24, 64).plan(Z, variants=ALL_Z)
    assert chosen.text_encoder_weights == "bf16" and chosen.variant == "bf16" and chosen.profile == "full"


def test_encoder_bytes_quantize_only_linear_layers() -> None:
    sizes = MemoryPlanner(Settings(), machine(8, 32), "cuda", BOTH).sizes(Z)
    te = sizes.text_encoder
    assert encoder_bytes(te, "bf16", 2) == te.params * 2
    rest = (te.params - te.linear_params) * 2
    assert encoder_bytes(te, "int8", 2) == te.linear_params + rest
    assert rest < encoder_bytes(te, "uint4", 2) < encoder_bytes(te, "int8", 2)


def test_planner_picks_among_present_variants_only(tmp_path: Path) -> None:
    present = {"gguf-q8_0": tmp_path / "a.gguf", "gguf-q3_k_m": tmp_path / "b.gguf"}  # not read: absent
    chosen = planner(8, 32, present).plan(Z)
    assert chosen.variant in present
    # With nothing quantized here, only bf16 is planned, whatever would fit better.
    assert planner(8, 32, {}).plan(Z).variant == "bf16"


def test_a_variant_needing_a_missing_package_is_not_picked(tmp_path: Path) -> None:
    present = {"bf16": tmp_path, "gguf-q4_k_m": tmp_path / "x.gguf"}
    assert planner(8, 32, present, environment=Environment()).plan(Z).variant == "bf16"


def test_step_down_moves_to_a_smaller_present_variant() -> None:
    present = {name: Path(name) for name in ("gguf-q8_0", "gguf-q6_k", "gguf-q4_k_m")}
    plans = planner(12, 64, present)
    current = plans.plan(Z)
    assert current.fits and current.variant in present, current.describe()
    lower = plans.step_down(Z, current)
    assert lower is not None
    assert lower.peak_vram_bytes < current.peak_vram_bytes
    # Before streaming blocks, stepping down tries a smaller present file in the same profile.
    seen = [current]
    while (step := plans.step_down(Z, seen[-1])) is not None and step.profile == current.profile:
        seen.append(step)
    smaller = [p for p in seen if p.variant != current.variant]
    assert smaller and all(p.transformer_bytes < current.transformer_bytes for p in smaller)
    assert {p.variant for p in seen} <= set(present)


def refusal(device: dict, environment: Environment = BOTH) -> str:
    from imagestudio.memory.plan import check_variant

    with pytest.raises(ConfigError) as caught:
        check_variant(Z, "gguf-q4_k_m", DeviceSettings(**device), environment)
    return str(caught.value)


def test_impossible_combinations_are_refused_in_one_line() -> None:
    for message in (
        refusal({"weights": "fp8"}),
        refusal({}, Environment()),
        refusal({"memory_profile": "sequential"}),
    ):
        assert "\n" not in message and "models.z-image-turbo.weights" in message
    assert "pip install gguf" in refusal({}, Environment())
    assert "device.weights fp8" in refusal({"weights": "fp8"})
    # A request's weights: the same words, as a request error naming the field.
    from imagestudio.errors import InvalidRequest
    from imagestudio.memory.plan import check_variant

    with pytest.raises(InvalidRequest) as caught:
        check_variant(Z, "gguf-q4_k_m", DeviceSettings(weights="fp8"), BOTH, requested=True)
    assert caught.value.param == "weights" and "device.weights fp8 cannot apply" in str(caught.value)


def test_plans_of_every_variant_are_predictions_in_range() -> None:
    plans: list[MemoryPlan] = [planner(8, 32).plan(Z, variants=(name,)) for name in ALL_Z]
    sizes = {p.variant: p.transformer_bytes for p in plans}
    assert sizes["gguf-q8_0"] > sizes["gguf-q6_k"] > sizes["gguf-q4_k_m"] > sizes["gguf-q3_k_m"]


def _tiny_settings(tmp_path: Path, weights: str = "auto") -> Settings:
    from imagestudio.config import load_settings

    return load_settings(
        overrides={
            "storage": {"models_dir": str(tmp_path / "models"), "outputs_dir": str(tmp_path / "out")},
            "models": {"tiny-z-image": {"weights": weights}},
        }
    )


@pytest.mark.slow
def test_tiny_gguf_variant_is_planned_at_its_exact_header_bytes(tmp_path: Path) -> None:
    """The tiny Z-Image Q4_0 file, written by the loader's builder: the plan's transformer bytes are its
    tensors' bytes, which fill the file's data section up to GGUF's per-tensor alignment."""
    import gguf

    from imagestudio.models.variants import variant_files

    settings = _tiny_settings(tmp_path, "gguf-q4_0")
    spec = MODELS["tiny-z-image"]
    files = variant_files(spec, "gguf-q4_0", settings)
    assert files is not None and files.gguf_file is not None
    cpu = Hardware("cpu", "test CPU", 0, 0, True, None, 32 * GIB, 32 * GIB, None)
    chosen = MemoryPlanner(settings, cpu, "cpu", BOTH).plan(spec)
    assert chosen.variant == "gguf-q4_0"  # models.tiny-z-image.weights
    reader = gguf.GGUFReader(files.gguf_file, "r")
    data_section = files.gguf_file.stat().st_size - reader.data_offset
    padding = data_section - chosen.transformer_bytes
    assert 0 <= padding < 32 * len(reader.tensors)
    bf16 = MemoryPlanner(_tiny_settings(tmp_path, "bf16"), cpu, "cpu", BOTH).plan(spec)
    assert chosen.transformer_bytes < bf16.transformer_bytes / 2  # 4.5 bits per quantized weight
