"""The prediction tables of docs/memory.md, generated from the planner.

``python -m benchmarks.memory_table docs/memory.md`` rewrites the part of the file between the
``<!-- predictions:begin -->`` and ``<!-- predictions:end -->`` markers; a test fails when the file and
the planner disagree, so the document cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN = "<!-- predictions:begin -->"
END = "<!-- predictions:end -->"
VARIANTS_BEGIN = "<!-- variants:begin -->"
VARIANTS_END = "<!-- variants:end -->"

CARDS_GB = (6, 8, 12, 16, 24, 48, 80)
TABLE_RAM_GB = 64
MODELS_IN_TABLE = ("z-image-turbo", "qwen-image-edit-2511")
GIB = 1024**3


def _planner(vram_gb: float, device: dict[str, object] | None = None):
    from imagestudio.config import DeviceSettings, Settings
    from imagestudio.hardware import Hardware, simulate_hardware
    from imagestudio.memory.plan import Environment
    from imagestudio.memory.planner import MemoryPlanner

    ram = TABLE_RAM_GB * GIB
    base = Hardware("cpu", "table", 0, 0, True, None, ram, ram, None)
    settings = Settings(device=DeviceSettings(**(device or {})))
    # Environment(): no bitsandbytes/torchao, so the table does not depend on who generates it.
    return MemoryPlanner(settings, simulate_hardware(base, vram_gb, TABLE_RAM_GB), "cuda", Environment())


def cards_table() -> str:
    from imagestudio.registry import MODELS

    lines = [
        "| card | model | plan | peak VRAM | peak RAM | fits |",
        "|---:|---|---|---:|---:|:---:|",
    ]
    for model_id in MODELS_IN_TABLE:
        for gb in CARDS_GB:
            plan = _planner(gb).plan(MODELS[model_id])
            lines.append(
                f"| {gb} GB | {model_id} | {plan.describe()} | {plan.predicted_peak_vram_gb:.1f} GB | "
                f"{plan.predicted_peak_ram_gb:.1f} GB | {'yes' if plan.fits else 'no'} |"
            )
    return "\n".join(lines)


def profiles_table() -> str:
    from imagestudio.registry import MODELS

    lines = [
        "| model | profile | weights | text encode | denoise | VAE decode | peak VRAM | peak RAM "
        "| PCIe / image |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model_id in MODELS_IN_TABLE:
        for profile in ("full", "model_offload", "group_offload", "sequential"):
            for weights in ("bf16", "fp8"):
                plan = _planner(141, {"memory_profile": profile, "weights": weights}).plan(MODELS[model_id])
                phases = plan.phases_gb
                lines.append(
                    f"| {model_id} | {profile} | {weights} | {phases['text_encode']:.1f} | "
                    f"{phases['denoise']:.1f} | {phases['vae_decode']:.1f} | "
                    f"{plan.predicted_peak_vram_gb:.1f} GB | {plan.predicted_peak_ram_gb:.1f} GB | "
                    f"{plan.transfer_gb_per_image:.0f} GB |"
                )
    return "\n".join(lines)


#: The shared notes' figures (bf16, 1024²), "measured" where a source measured them; decimal GB.
PUBLISHED = (
    ("Z-Image-Turbo, everything on the GPU", "z-image-turbo", "full", "bf16", "~21–24 GB (24.5 measured)"),
    ("Z-Image-Turbo, model offload", "z-image-turbo", "model_offload", "bf16", "~13–14 GB"),
    ("Z-Image-Turbo, fp8 + model offload", "z-image-turbo", "model_offload", "fp8", "~7–8 GB"),
    ("Z-Image-Turbo, group offload", "z-image-turbo", "group_offload", "bf16", "~2–3 GB"),
    ("Qwen-Image-Edit-2511, everything on the GPU", "qwen-image-edit-2511", "full", "bf16", "~58 GB"),
    (
        "Qwen-Image-Edit-2511, model offload",
        "qwen-image-edit-2511",
        "model_offload",
        "bf16",
        "~41 GB (40 measured)",
    ),
    (
        "Qwen-Image-Edit-2511, fp8 + model offload",
        "qwen-image-edit-2511",
        "model_offload",
        "fp8",
        "~21 GB (21 measured)",
    ),
    ("Qwen-Image-Edit-2511, group offload", "qwen-image-edit-2511", "group_offload", "bf16", "~3–4 GB"),
)


def published_table() -> str:
    from imagestudio.registry import MODELS

    lines = ["| | published | predicted here |", "|---|---|---|"]
    for label, model_id, profile, weights, published in PUBLISHED:
        plan = _planner(141, {"memory_profile": profile, "weights": weights}).plan(MODELS[model_id])
        gib = plan.predicted_peak_vram_gb
        lines.append(f"| {label} | {published} | {gib:.1f} GiB = {gib * GIB / 1e9:.1f} GB |")
    return "\n".join(lines)


#: The machines of the weight-variant tables: cards × RAM, GB.
VARIANT_CARDS_GB = (8, 12, 16, 24)
VARIANT_RAMS_GB = (16, 32, 64)


def _variant_planner(vram_gb: float, ram_gb: float, device: dict[str, object] | None = None):
    from imagestudio.config import DeviceSettings, Settings
    from imagestudio.hardware import Hardware, simulate_hardware
    from imagestudio.memory.plan import Environment
    from imagestudio.memory.planner import MemoryPlanner

    ram = int(ram_gb * GIB)
    base = Hardware("cpu", "table", 0, 0, True, None, ram, ram, None)
    settings = Settings(device=DeviceSettings(**(device or {})))
    # gguf and sdnq installed, no other quantizer; no variant "present" (published sizes): the same table
    # whoever generates it, whatever their disk holds.
    environment = Environment(variants=frozenset({"gguf", "sdnq"}))
    return MemoryPlanner(
        settings, simulate_hardware(base, vram_gb, ram_gb), "cuda", environment, lambda spec, _s: {}
    )


def recommendations_table(model_id: str) -> str:
    """Per machine: the variant the doctor recommends, its plan, and every variant that fits there."""
    from imagestudio.registry import MODELS

    spec = MODELS[model_id]
    names = tuple(v.name for v in spec.weight_variants)
    lines = [
        "| card | RAM | recommended | plan | peak VRAM | peak RAM | PCIe / image | variants that fit |",
        "|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for vram in VARIANT_CARDS_GB:
        for ram in VARIANT_RAMS_GB:
            planner = _variant_planner(vram, ram)
            best = planner.plan(spec, variants=names)
            fitting = [name for name in names if planner.plan(spec, variants=(name,)).fits]
            shown = best.variant if best.fits else "none fits"
            lines.append(
                f"| {vram} GB | {ram} GB | {shown} | {best.describe()} | "
                f"{best.predicted_peak_vram_gb:.1f} GB | {best.predicted_peak_ram_gb:.1f} GB | "
                f"{best.transfer_gb_per_image:.0f} GB | "
                f"{', '.join(fitting) or '-'} |"
            )
    return "\n".join(lines)


def variants_table(model_id: str, vram_gb: float, ram_gb: float) -> str:
    """``imagestudio doctor``'s variant table of one model on one machine."""
    from imagestudio.doctor import variant_rows
    from imagestudio.registry import MODELS

    rows, _best = variant_rows(_variant_planner(vram_gb, ram_gb), MODELS[model_id])
    lines = [
        "| variant | download | fits | plan | peak VRAM | peak RAM | PCIe / image | quality (source) |",
        "|---|---:|:---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        plan = row.plan
        lines.append(
            f"| {row.variant.name} | {row.download_bytes / 1e9:.1f} GB | {'yes' if plan.fits else 'no'} | "
            f"{plan.describe()} | {plan.predicted_peak_vram_gb:.1f} GB | "
            f"{plan.predicted_peak_ram_gb:.1f} GB | {plan.transfer_gb_per_image:.0f} GB | "
            f"{row.variant.quality} ({row.variant.quality_source}) |"
        )
    return "\n".join(lines)


#: Published figures for quantized Z-Image-Turbo (asomoza/diffusers-recipes, RTX 5090, 1024², diffusers),
#: as the project's notes give them: VRAM / RAM in GB.
PUBLISHED_VARIANTS = (
    ("GGUF Q8_0 + model offload", "gguf-q8_0", "model_offload", "8.53 GB / 16.4 GB"),
    ("GGUF Q4_K_M + 4-bit text encoder + model offload", "gguf-q4_k_m", "model_offload", "6.42 GB / 9.6 GB"),
)


def published_variants_table() -> str:
    from imagestudio.registry import MODELS

    lines = ["| Z-Image-Turbo | published VRAM / RAM | predicted here (VRAM / RAM) |", "|---|---|---|"]
    for label, variant, profile, published in PUBLISHED_VARIANTS:
        plan = _variant_planner(32, 64, {"memory_profile": profile}).plan(
            MODELS["z-image-turbo"], variants=(variant,)
        )
        lines.append(
            f"| {label} | {published} | {plan.predicted_peak_vram_gb:.1f} / {plan.predicted_peak_ram_gb:.1f} "
            f"GiB ({plan.text_encoder_weights} text encoder) |"
        )
    return "\n".join(lines)


def generated_variants_section() -> str:
    parts = [
        VARIANTS_BEGIN,
        "**Recommended weight variant per machine** (`imagestudio doctor --simulate-vram V "
        "--simulate-ram R`; same workloads as above; variants not downloaded are sized from their "
        "published file sizes):",
    ]
    for model_id in MODELS_IN_TABLE:
        parts += [f"*{model_id}*", recommendations_table(model_id)]
    for vram, ram in ((8, 32), (8, 16)):
        for model_id in MODELS_IN_TABLE:
            parts += [
                f"*{model_id}, {vram} GB card, {ram} GB RAM — every variant:*",
                variants_table(model_id, vram, ram),
            ]
    parts += [
        "**Against published figures** (a user's measurements, labelled as published; predicted here for a "
        "32 GB card with the profile forced, the text encoder as the plan picks it):",
        published_variants_table(),
        VARIANTS_END,
    ]
    return "\n\n".join(parts)


def generated_section() -> str:
    return "\n\n".join(
        [
            BEGIN,
            f"**Predicted plans for common cards** (1024×1024; Z-Image-Turbo 8 steps; Qwen-Image-Edit-2511 "
            f"one reference, true CFG, 40 steps; {TABLE_RAM_GB} GB of RAM; default 1 GB reserve):",
            cards_table(),
            "**Predicted peaks per profile** (same workloads; GB per phase; the last column is the weight "
            "traffic between RAM and the card per image):",
            profiles_table(),
            "**Against published figures** (the project's notes on the models, collected from the models' "
            "repositories and user reports; decimal GB there, so both units are shown):",
            published_table(),
            END,
        ]
    )


def rewrite(path: Path) -> bool:
    """Replace the generated sections of ``path``; returns whether the file changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    updated = text[:start] + generated_section() + text[end:]
    start, end = updated.index(VARIANTS_BEGIN), updated.index(VARIANTS_END) + len(VARIANTS_END)
    updated = updated[:start] + generated_variants_section() + updated[end:]
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    changed = rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/memory.md"))
    print("updated" if changed else "up to date")
