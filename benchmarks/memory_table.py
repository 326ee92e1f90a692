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
    """Replace the generated section of ``path``; returns whether the file changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    updated = text[:start] + generated_section() + text[end:]
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    changed = rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/memory.md"))
    print("updated" if changed else "up to date")
