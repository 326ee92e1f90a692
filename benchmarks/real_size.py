"""The real-size GPU harness: full-size random-weight transformers, seconds per step and peak VRAM.

No download and no text encoder: each transformer is built from the real model's configuration (the one
that ships with the app, ``imagestudio/model_configs``) by the app's own random-weight builder
(:mod:`imagestudio.models.random_weights`), directly on the device in bfloat16, and fed random inputs of
the real shapes at 1024²:

* Z-Image-Turbo: one 1024² latent (16×128×128 → 4096 image tokens) and 128 prompt-embedding tokens;
  one forward per step, 8 steps per image.
* Qwen-Image-Edit-2511: a 1024² output latent plus one 1024² reference latent (4096 + 4096 packed
  tokens) and ~300 prompt tokens (the instruction plus the reference's vision tokens); true CFG runs
  two forwards per step (the negative prompt's is shorter; both are timed at 300 tokens), 40 steps.

Random weights time the same as trained ones: nothing in these models branches on values. Each profile
(``full``; ``full_fp8``: fp8 storage, bf16 compute through diffusers' layerwise casting;
``group_offload``: diffusers' block-level group offloading from pinned CPU memory on a side stream)
gets a fresh model, a warm-up, then timed forwards (CUDA events) and the peak allocated VRAM.

Model-FLOP utilisation divides the FLOPs of one forward by its time and by the device's peak dense bf16
throughput: the FLOPs are the estimate of the project's model notes at real size (Z-Image ~57 TFLOP,
Qwen edit ~169 TFLOP per forward at 1024²), and also counted by torch's ``FlopCounterMode`` on a
meta-device copy of the model as a cross-check (56.6 and 168.6 TFLOP). ``reduced=True`` runs the
same code at a tiny size, on the CPU too, so the harness itself is tested where no GPU is.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.report import Row, TableLayout, failed_row
from benchmarks.stats import summarize

NAME = "real_size"
PROFILES = ("full", "full_fp8", "group_offload")
RESOLUTION = 1024
REDUCED_RESOLUTION = 128

#: Dense bf16 tensor throughput (TFLOP/s, no sparsity) from NVIDIA's data sheets, by device-name part.
#: The most specific match wins. MFU is reported against this figure, which the results name.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("H800", 989.4),
    ("A100", 312.0),
    ("RTX 4090", 165.2),
)

# Reduced: the same classes and code paths as the shipped real configurations, a few MB.
Z_IMAGE_REDUCED: dict[str, Any] = {
    "dim": 128,
    "n_layers": 2,
    "n_refiner_layers": 1,
    "n_heads": 2,
    "n_kv_heads": 2,
    "cap_feat_dim": 64,
    "axes_dims": [16, 24, 24],
}
QWEN_EDIT_REDUCED: dict[str, Any] = {
    "num_layers": 2,
    "attention_head_dim": 32,
    "num_attention_heads": 2,
    "joint_attention_dim": 64,
    "axes_dims_rope": (8, 12, 12),
}


class NeedsCuda(RuntimeError):
    """Full-size transformers only fit and only mean something on a CUDA GPU."""


@dataclass(frozen=True)
class Workload:
    """One model's transformer at 1024², as its pipeline calls it."""

    #: The registry id: its transformer config ships with the package (``imagestudio/model_configs``).
    key: str
    title: str
    #: What the reduced run changes in the real configuration.
    reduced_overrides: dict[str, Any]
    #: Parameter count of the real configuration (shared notes; checked against the meta-device build).
    real_params: int
    #: TFLOP per forward at 1024² (shared notes, an estimate).
    notes_tflop: float
    forwards_per_step: int
    steps_per_image: int
    text_tokens: int
    reduced_text_tokens: int
    make_inputs: Callable[[Any, dict[str, Any], int, int, str], dict[str, Any]]

    def config(self, reduced: bool) -> dict[str, Any]:
        """The transformer's configuration: the real model's, or the reduced one."""
        from imagestudio.models.configs import component_configs
        from imagestudio.registry import get_model

        real = component_configs(get_model(self.key))["transformer"]
        return {**real, **self.reduced_overrides} if reduced else real


def _z_image_inputs(torch: Any, config: dict[str, Any], resolution: int, text: int, device: str) -> dict:
    side = resolution // 8
    bf16 = torch.bfloat16
    return {
        "x": [torch.randn(config["in_channels"], 1, side, side, device=device, dtype=bf16)],
        "t": torch.full((1,), 0.5, device=device),
        "cap_feats": [torch.randn(text, config["cap_feat_dim"], device=device, dtype=bf16)],
        "return_dict": False,
    }


def _qwen_edit_inputs(torch: Any, config: dict[str, Any], resolution: int, text: int, device: str) -> dict:
    side = resolution // 8 // config["patch_size"]
    bf16 = torch.bfloat16
    tokens = side * side
    return {
        # The pipeline concatenates the packed noisy latent and the reference latent along the sequence.
        "hidden_states": torch.randn(1, 2 * tokens, config["in_channels"], device=device, dtype=bf16),
        "encoder_hidden_states": torch.randn(
            1, text, config["joint_attention_dim"], device=device, dtype=bf16
        ),
        "encoder_hidden_states_mask": None,  # the pipeline drops an all-ones mask (one prompt)
        "timestep": torch.full((1,), 0.5, device=device, dtype=bf16),
        "img_shapes": [[(1, side, side), (1, side, side)]],
        "return_dict": False,
    }


WORKLOADS: dict[str, Workload] = {
    "z-image-turbo": Workload(
        key="z-image-turbo",
        title="Z-Image-Turbo",
        reduced_overrides=Z_IMAGE_REDUCED,
        real_params=6_154_908_736,
        notes_tflop=57.0,
        forwards_per_step=1,
        steps_per_image=8,
        text_tokens=128,
        reduced_text_tokens=16,
        make_inputs=_z_image_inputs,
    ),
    "qwen-image-edit-2511": Workload(
        key="qwen-image-edit-2511",
        title="Qwen-Image-Edit-2511",
        reduced_overrides=QWEN_EDIT_REDUCED,
        real_params=20_430_401_088,
        notes_tflop=169.0,
        forwards_per_step=2,
        steps_per_image=40,
        text_tokens=300,
        reduced_text_tokens=24,
        make_inputs=_qwen_edit_inputs,
    ),
}


def peak_tflops_for(device_name: str) -> float | None:
    """The data-sheet dense bf16 TFLOP/s for a device name, or None when the table does not know it."""
    for part, tflops in PEAK_BF16_TFLOPS:
        if part.lower() in device_name.lower():
            return tflops
    return None


def build_transformer(workload: Workload, device: str, reduced: bool) -> Any:
    """The transformer with random bf16 weights, created directly on ``device`` (``meta`` works too)."""
    import torch

    from imagestudio.models.random_weights import random_component
    from imagestudio.registry import get_model

    family = get_model(workload.key).family
    model = random_component(
        family, "transformer", workload.config(reduced), device=device, dtype=torch.bfloat16
    )
    return model.requires_grad_(False)


def count_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def apply_profile(model: Any, profile: str, device: str) -> Any:
    """Put ``model`` under a memory profile with the app's own calls (:mod:`imagestudio.memory.apply`,
    diffusers' mechanisms underneath); returns the model."""
    from imagestudio.memory.apply import group_offload, store_in_fp8

    if profile == "full":
        return model
    if profile == "full_fp8":
        store_in_fp8(model)  # fp8 storage, bf16 compute
        return model
    if profile == "group_offload":
        model.to("cpu")  # where measure() builds it already; kept so the function stands on its own
        _free(device)
        group_offload(model, device, pinned=True)
        return model
    raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def count_flops_on_meta(workload: Workload, reduced: bool, resolution: int, text: int) -> int:
    """FLOPs of one forward, counted on the meta device: shapes only, no memory, no arithmetic.

    At real size this gives 56.6 TFLOP for Z-Image-Turbo and 168.6 TFLOP for Qwen-Image-Edit-2511 at
    1024², matching the model notes' estimates (a test checks the agreement).
    """
    import torch

    model = build_transformer(workload, "meta", reduced)
    inputs = workload.make_inputs(torch, workload.config(reduced), resolution, text, "meta")
    return count_forward_flops(model, inputs, "meta")


def count_forward_flops(model: Any, inputs: dict[str, Any], device: str) -> int:
    """FLOPs of one forward by torch's ``FlopCounterMode`` (matmuls and attention)."""
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    # The CPU's fused attention kernel has no FLOP formula; its math path decomposes into counted bmm's.
    if device.startswith("cuda"):
        backend: Any = contextlib.nullcontext()
    else:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = sdpa_kernel(SDPBackend.MATH)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), backend, counter:
        model(**inputs)
    return int(counter.get_total_flops())


class ForwardTimer:
    """Times one call: CUDA events on a GPU (device time), ``perf_counter`` on the CPU."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def __call__(self, action: Callable[[], Any]) -> float:
        import torch

        if not self.cuda:
            started = time.perf_counter()
            action()
            return time.perf_counter() - started
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        action()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1000.0


def measure(
    workload: Workload,
    profile: str,
    *,
    device: str,
    reduced: bool,
    repeat: int,
    warmup: int,
    peak_tflops: float | None,
    peak_source: str,
    counted_flops: dict[str, int],
) -> Row:
    """Build, apply ``profile``, warm up, time ``repeat`` forwards; one row with every figure."""
    import torch

    cuda = device.startswith("cuda")
    resolution = REDUCED_RESOLUTION if reduced else RESOLUTION
    text = workload.reduced_text_tokens if reduced else workload.text_tokens
    config = workload.config(reduced)
    _free(device)
    if workload.key not in counted_flops:
        counted_flops[workload.key] = count_flops_on_meta(workload, reduced, resolution, text)
    # Group offloading keeps the weights in CPU RAM: build them there, so the profile also runs on a card
    # too small for the whole model (which is what it is for).
    model = build_transformer(workload, "cpu" if profile == "group_offload" else device, reduced)
    params = count_params(model)
    weights_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    inputs = workload.make_inputs(torch, config, resolution, text, device)
    model = apply_profile(model, profile, device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    timer = ForwardTimer(device)

    def forward() -> None:
        with torch.no_grad():
            model(**inputs)

    for _ in range(max(warmup, 1)):
        forward()
    seconds = [timer(forward) for _ in range(repeat)]
    peak_vram = torch.cuda.max_memory_allocated(device) if cuda else None
    peak_reserved = torch.cuda.max_memory_reserved(device) if cuda else None
    model = inputs = None  # drop the weights before the next profile builds its own
    _free(device)

    forward_s = summarize(seconds)
    counted = counted_flops[workload.key]
    notes_flops = None if reduced else workload.notes_tflop * 1e12
    flops = notes_flops if notes_flops is not None else counted
    mfu = flops / forward_s.median / (peak_tflops * 1e12) if peak_tflops else None
    step_s = forward_s.median * workload.forwards_per_step
    device_name = torch.cuda.get_device_name(device) if cuda else "cpu"
    extra = {
        "device": device,
        "device_name": device_name,
        "reduced": reduced,
        "profile": profile,
        "resolution": resolution,
        "text_tokens": text,
        "params": params,
        "params_expected": None if reduced else workload.real_params,
        "weights_bytes": weights_bytes,
        "forwards_per_step": workload.forwards_per_step,
        "steps_per_image": workload.steps_per_image,
        "s_per_forward": forward_s.median,
        "s_per_step": step_s,
        "s_per_image_denoise": step_s * workload.steps_per_image,
        "peak_vram_bytes": peak_vram,
        "peak_reserved_bytes": peak_reserved,
        "flops_per_forward_notes": notes_flops,
        "flops_per_forward_counted": counted,
        "mfu": mfu,
        "mfu_flops_basis": "model notes" if notes_flops is not None else "FlopCounterMode",
        "peak_tflops": peak_tflops,
        "peak_tflops_source": peak_source,
    }
    vram = f"peak VRAM {peak_vram / 2**30:.2f} GiB" if peak_vram is not None else "no VRAM (CPU)"
    mfu_text = f"MFU {mfu * 100:.1f}% of {peak_tflops:g} TFLOP/s" if mfu is not None else "MFU n/a"
    note = (
        f"{device_name}; {vram}; {forward_s.median:.3f} s/forward × {workload.forwards_per_step}; "
        f"{step_s * workload.steps_per_image:.2f} s per image ({workload.steps_per_image} steps); {mfu_text}"
    )
    return Row(
        benchmark=NAME,
        case=f"{workload.title} · {profile}" + (" (reduced)" if reduced else ""),
        status="measured",
        value=step_s,
        unit="s/step",
        app=forward_s,
        note=note,
        samples={"forward_s": seconds},
        extra=extra,
    )


def run_harness(
    *,
    reduced: bool,
    device: str | None = None,
    models: list[str] | None = None,
    profiles: list[str] | None = None,
    repeat: int = 5,
    warmup: int = 2,
    peak_tflops: float | None = None,
    log: Callable[[str], None] | None = None,
) -> list[Row]:
    """Every model × profile; a profile that fails (say, out of memory) is reported and the rest go on."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if not reduced and not device.startswith("cuda"):
        raise NeedsCuda(
            "--real-size needs a CUDA GPU: full-size transformers are 12 GB (Z-Image) and 38 GB (Qwen edit) "
            "in bf16; use --real-size --reduced to run the harness at a tiny size on this machine"
        )
    if peak_tflops is not None:
        source = "given with --peak-tflops"
    elif device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
        peak_tflops = peak_tflops_for(name)
        source = f"data sheet, dense bf16, {name}" if peak_tflops else f"unknown for {name}"
    else:
        source = "none for a CPU (give --peak-tflops)"
    counted: dict[str, int] = {}
    rows = []
    for key in models or list(WORKLOADS):
        workload = WORKLOADS[key]
        for profile in profiles or list(PROFILES):
            if log:
                log(f"{NAME}: {workload.title} · {profile}{' (reduced)' if reduced else ''} on {device}")
            try:
                rows.append(
                    measure(
                        workload,
                        profile,
                        device=device,
                        reduced=reduced,
                        repeat=repeat,
                        warmup=warmup,
                        peak_tflops=peak_tflops,
                        peak_source=source,
                        counted_flops=counted,
                    )
                )
            except Exception as exc:  # noqa: BLE001 - an OOM in one profile must not lose the others
                rows.append(failed_row(NAME, f"{workload.title} · {profile}", exc))
                _free(device)
    return rows


# ---------------------------------------------------------------------------------------------- table

TABLE_HEADERS = [
    "model · profile",
    "device",
    "s/forward median [IQR]",
    "s/step",
    "s/image (denoise)",
    "peak VRAM",
    "FLOP/forward (notes · counted)",
    "MFU",
]


def table_cells(row: Row) -> list[str]:
    """One harness row as the console and markdown tables show it."""
    if row.status != "measured" or row.app is None:
        return [row.case, "—", row.status, "—", "—", "—", "—", row.note]
    extra = row.extra
    vram = extra.get("peak_vram_bytes")
    notes = extra.get("flops_per_forward_notes")
    counted = extra.get("flops_per_forward_counted")
    mfu = extra.get("mfu")
    flops = f"{_flops(notes)} · {_flops(counted)}"
    mfu_text = f"{mfu * 100:.1f}% of {extra['peak_tflops']:g}" if mfu is not None else "—"
    return [
        row.case,
        str(extra.get("device_name", "")),
        f"{row.app.median:.4f} [{row.app.q1:.4f}–{row.app.q3:.4f}]",
        f"{extra['s_per_step']:.4f}",
        f"{extra['s_per_image_denoise']:.2f}",
        f"{vram / 2**30:.2f} GiB" if vram is not None else "—",
        flops,
        mfu_text,
    ]


TABLE = TableLayout("real-size transformers", TABLE_HEADERS, table_cells)


def _flops(value: float | None) -> str:
    if not value:
        return "—"
    return f"{value / 1e12:.1f} T" if value >= 1e11 else f"{value / 1e9:.3f} G"
