"""The real-size GPU harness: its configurations, and the whole harness run at reduced size on the CPU."""

from __future__ import annotations

import pytest
from benchmarks.real_size import (
    PROFILES,
    WORKLOADS,
    NeedsCuda,
    build_transformer,
    count_flops_on_meta,
    count_forward_flops,
    count_params,
    peak_tflops_for,
    run_harness,
    table_cells,
)


@pytest.mark.parametrize("key", list(WORKLOADS))
def test_real_configs_have_the_real_parameter_counts(key: str) -> None:
    # Built on the meta device: no memory, but exactly the modules a GPU run creates.
    workload = WORKLOADS[key]
    model = build_transformer(workload, "meta", reduced=False)
    assert count_params(model) == workload.real_params


@pytest.mark.slow
@pytest.mark.parametrize("key", list(WORKLOADS))
def test_counted_flops_agree_with_the_model_notes(key: str) -> None:
    # The notes' per-forward estimates at 1024² (the MFU basis) against torch's count of the real model.
    workload = WORKLOADS[key]
    counted = count_flops_on_meta(workload, reduced=False, resolution=1024, text=workload.text_tokens)
    assert counted / 1e12 == pytest.approx(workload.notes_tflop, rel=0.02)


def test_reduced_harness_runs_every_model_and_profile_on_cpu() -> None:
    rows = run_harness(reduced=True, device="cpu", repeat=2, warmup=1)
    assert [row.case for row in rows] == [
        f"{workload.title} · {profile} (reduced)" for workload in WORKLOADS.values() for profile in PROFILES
    ]
    for row in rows:
        assert row.status == "measured", row.note
        extra = row.extra
        workload = WORKLOADS[next(k for k, w in WORKLOADS.items() if row.case.startswith(w.title))]
        assert row.app is not None and row.app.n == 2
        assert extra["s_per_step"] == pytest.approx(row.app.median * workload.forwards_per_step)
        assert extra["s_per_image_denoise"] == pytest.approx(extra["s_per_step"] * workload.steps_per_image)
        assert extra["flops_per_forward_counted"] > 0
        assert extra["flops_per_forward_notes"] is None  # the notes' figures are for the real size only
        assert extra["peak_vram_bytes"] is None and extra["mfu"] is None
        assert extra["params"] < 10_000_000
        assert len(table_cells(row)) == 8


def test_counted_flops_include_attention() -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    workload = WORKLOADS["z-image-turbo"]
    model = build_transformer(workload, "cpu", reduced=True)
    inputs = workload.make_inputs(torch, workload.config(reduced=True), 128, 16, "cpu")
    # The CPU's fused attention kernel has no FLOP formula, so a plain count sees the linear layers only.
    linear_only = FlopCounterMode(display=False)
    with torch.no_grad(), linear_only:
        model(**inputs)
    counted = count_forward_flops(model, inputs, "cpu")
    assert counted > linear_only.get_total_flops() > 0


def test_mfu_uses_the_given_peak() -> None:
    [row] = run_harness(
        reduced=True,
        device="cpu",
        models=["qwen-image-edit-2511"],
        profiles=["full"],
        repeat=1,
        peak_tflops=1.0,
    )
    extra = row.extra
    assert extra["peak_tflops"] == 1.0 and extra["peak_tflops_source"] == "given with --peak-tflops"
    expected = extra["flops_per_forward_counted"] / extra["s_per_forward"] / 1e12
    assert extra["mfu"] == pytest.approx(expected)


def test_full_size_refuses_without_cuda() -> None:
    with pytest.raises(NeedsCuda, match="--reduced"):
        run_harness(reduced=False, device="cpu")


def test_peak_table() -> None:
    assert peak_tflops_for("NVIDIA H100 80GB HBM3") == 989.4
    assert peak_tflops_for("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops_for("NVIDIA H200") == 989.4
    assert peak_tflops_for("Some Unknown GPU") is None
