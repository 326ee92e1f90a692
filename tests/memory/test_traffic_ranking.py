"""Ranking weight variants by PCIe traffic as well as quality, on the simulated machines of the documents
(8/32, 12/32, 16/64, 24/64 GB card/RAM) for both models, every variant counted as present."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagestudio.config import DeviceSettings, Settings
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.plan import FAR_LESS_TRAFFIC, STREAMING_PROFILES, Environment, MemoryPlan
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.registry import MODELS, ModelSpec

GIB = 1024**3
BOTH = Environment(variants=frozenset({"gguf", "sdnq"}))
Z = MODELS["z-image-turbo"]
QWEN = MODELS["qwen-image-edit-2511"]
MACHINES = ((8, 32), (12, 32), (16, 64), (24, 64))


def planner(vram_gb: float, ram_gb: float) -> MemoryPlanner:
    cpu = Hardware("cpu", "test CPU", 0, 0, True, None, int(ram_gb * GIB), int(ram_gb * GIB), None)
    return MemoryPlanner(
        Settings(device=DeviceSettings()),
        simulate_hardware(cpu, vram_gb, ram_gb),
        "cuda",
        BOTH,
        locate_variants=lambda spec, _settings: {v.name: Path(v.name) for v in spec.weight_variants},
    )


def every_variant(spec: ModelSpec, vram_gb: float, ram_gb: float) -> tuple[MemoryPlan, list[MemoryPlan]]:
    """The plan ``auto`` picks with every variant present, and each variant's own best plan here."""
    plans = planner(vram_gb, ram_gb)
    alone = [plans.plan(spec, variants=(v.name,)) for v in spec.weight_variants]
    return plans.plan(spec), alone


def best_quality(plans: list[MemoryPlan]) -> MemoryPlan:
    """The planner's quality order: more stored transformer bytes per parameter first (bf16 > Q8_0 > fp8 >
    Q6_K …); checked here against what the chosen plan stores."""
    return max(plans, key=lambda p: p.transformer_bytes)


def test_qwen_on_an_8_gb_card_prefers_q4_k_m_over_streaming_q8_0() -> None:
    chosen, alone = every_variant(QWEN, 8, 32)
    by_name = {p.variant: p for p in alone}
    q8 = by_name["gguf-q8_0"]
    # Every variant streams here; Q8_0 is the best quality that fits and moves ~1.6 TB per image.
    assert q8.fits and q8.profile == "group_offload" and q8.transfer_gb_per_image > 1400
    assert chosen.variant == "gguf-q4_k_m", chosen.why
    assert chosen.transfer_gb_per_image <= q8.transfer_gb_per_image * FAR_LESS_TRAFFIC
    assert chosen.preferred_over == "gguf-q8_0"
    assert chosen.preferred_over_transfer_gb == q8.transfer_gb_per_image
    assert "chose gguf-q4_k_m over gguf-q8_0" in chosen.why and "per image" in chosen.why
    # Between the two, Q6_K and Q5_K_M save less than a third: not worth their quality loss.
    for closer in ("gguf-q6_k", "gguf-q5_k_m"):
        assert by_name[closer].transfer_gb_per_image > q8.transfer_gb_per_image * FAR_LESS_TRAFFIC


def test_the_trade_does_not_depend_on_how_much_ram_is_spare() -> None:
    """With 64 GB the bf16 files fit the RAM too; streaming them (~3 TB per image) still gives way."""
    assert every_variant(QWEN, 8, 64)[0].variant == every_variant(QWEN, 8, 32)[0].variant


@pytest.mark.parametrize("spec", [Z, QWEN], ids=["z-image", "qwen-edit"])
@pytest.mark.parametrize(("vram", "ram"), MACHINES)
def test_no_fitting_variant_would_move_far_less_than_the_chosen_plan(
    spec: ModelSpec, vram: float, ram: float
) -> None:
    chosen, alone = every_variant(spec, vram, ram)
    assert chosen.fits, chosen.why
    if chosen.profile not in STREAMING_PROFILES:
        return  # full and model offload move each weight at most once per image: quality decides
    for plan in alone:
        if plan.fits and plan.variant != chosen.variant:
            assert plan.transfer_gb_per_image > chosen.transfer_gb_per_image * FAR_LESS_TRAFFIC, (
                f"{plan.describe()} moves {plan.transfer_gb_per_image} GB against {chosen.describe()}"
            )


@pytest.mark.parametrize("spec", [Z, QWEN], ids=["z-image", "qwen-edit"])
@pytest.mark.parametrize(("vram", "ram"), MACHINES)
def test_quality_first_where_traffic_does_not_grow_with_steps(
    spec: ModelSpec, vram: float, ram: float
) -> None:
    """Resident or model-offloaded plans keep the best quality that fits in the fastest profile."""
    chosen, alone = every_variant(spec, vram, ram)
    if chosen.profile in STREAMING_PROFILES:
        assert chosen.preferred_over or not any(p.fits and p.profile not in STREAMING_PROFILES for p in alone)
        return
    assert not chosen.preferred_over
    same_profile = [p for p in alone if p.fits and p.profile == chosen.profile]
    best = best_quality(same_profile)
    assert chosen.transformer_bytes == best.transformer_bytes, (chosen.describe(), best.describe())
    # A fitting variant that runs resident or model-offloaded beats any that streams.
    assert all(p.profile not in STREAMING_PROFILES for p in same_profile)


def test_model_offload_of_a_smaller_variant_beats_streaming_a_bigger_one() -> None:
    """12 GB: Qwen's Q4_K_M and up only stream; Q3_K_M runs model offload (tens of GB per image)."""
    chosen, alone = every_variant(QWEN, 12, 32)
    by_name = {p.variant: p for p in alone}
    assert by_name["gguf-q4_k_m"].profile == "group_offload"
    assert chosen.profile == "model_offload" and chosen.variant == "gguf-q3_k_m"
    assert chosen.transfer_gb_per_image * 10 < by_name["gguf-q4_k_m"].transfer_gb_per_image


def test_equal_traffic_keeps_quality_first() -> None:
    """On a 24 GB card both models run resident (no traffic): the best-quality variant that fits runs."""
    for spec in (Z, QWEN):
        chosen, alone = every_variant(spec, 24, 64)
        assert chosen.profile == "full" and chosen.transfer_gb_per_image == 0
        resident = [p for p in alone if p.fits and p.profile == "full"]
        assert chosen.transformer_bytes == best_quality(resident).transformer_bytes


def test_a_requested_variant_is_never_traded() -> None:
    plans = planner(8, 32)
    q8 = plans.plan(QWEN, variants=("gguf-q8_0",))
    assert q8.variant == "gguf-q8_0" and not q8.preferred_over


def test_the_doctor_says_why_it_recommends_the_smaller_variant(tmp_path: Path) -> None:
    from imagestudio.cli.doctor import variant_table
    from imagestudio.config import load_settings
    from imagestudio.doctor import model_report

    hardware = planner(8, 32).hardware()
    storage = {"models_dir": str(tmp_path / "models"), "outputs_dir": str(tmp_path / "out")}
    settings = load_settings(overrides={"storage": storage})
    report = model_report(QWEN, settings, hardware, "cuda")
    assert report.recommended == "gguf-q4_k_m"
    assert report.as_dict()["recommended_plan"]["preferred_over"]["variant"] == "gguf-q8_0"
    lines = variant_table(report)
    assert lines[-2].startswith("→ recommended for this machine: gguf-q4_k_m")
    assert "rather than gguf-q8_0" in lines[-1] and "per image" in lines[-1]
