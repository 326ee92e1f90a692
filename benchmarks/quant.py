"""What each weight variant costs and changes: ``python -m benchmarks.quant [--markdown] [--models ...]``.

Per model and variant, each measured in a fresh process through the app's loader
(:func:`imagestudio.engine.loader.load_pipeline`, the path every job takes):

* **transformer error** — ‖out − out_bf16‖ / ‖out_bf16‖ of the transformer's output on the *same*
  inputs (those the bf16 pipeline's first denoising step gave its transformer, saved and fed to each
  variant's transformer);
* **image PSNR** — the decoded image of a 2-step, fixed-seed job against the bf16 one (dB; this includes
  the variant's quantized text encoder, where it has one);
* **load** — seconds to load the pipeline (the libraries imported before the clock starts), and
  **peak RSS** — the process's peak resident memory after loading (``ru_maxrss``: imports included, so
  on tiny models it is mostly Python and torch);
* **disk** — bytes of the transformer files the variant loads (the GGUF file or the SDNQ transformer).

On the tiny random-weight models (the default), 4-bit error is overstated: random Gaussian weights have
no outliers for the scales to spare. Real-size rows need the real files and a GPU; nothing here
estimates them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TINY_MODELS = ("tiny-z-image", "tiny-qwen-image-edit")
STEPS = 2
SEED = 7
SIZE = 64


@dataclass(frozen=True)
class QuantRow:
    model: str
    variant: str
    transformer_rel_error: float
    image_psnr_db: float
    load_s: float
    peak_rss_mb: float
    disk_bytes: int


def _settings(models_dir: Path) -> Any:
    from imagestudio.config import Settings, StorageSettings

    return Settings(storage=StorageSettings(models_dir=models_dir))


def _job_kwargs(spec: Any) -> dict[str, Any]:
    import torch
    from PIL import Image

    kwargs: dict[str, Any] = {
        "prompt": "a red cat on a chair",
        "width": SIZE,
        "height": SIZE,
        "num_inference_steps": STEPS,
        "generator": torch.Generator("cpu").manual_seed(SEED),
        "output_type": "np",
    }
    if spec.is_edit:
        kwargs |= {"image": [Image.new("RGB", (SIZE, SIZE), (200, 80, 40))], "true_cfg_scale": 1.0}
    else:
        kwargs["guidance_scale"] = 0.0
    return kwargs


def child(model_id: str, variant: str, models_dir: Path, workdir: Path) -> dict[str, Any]:
    """One variant in this (fresh) process: load, one job, the transformer on the shared inputs."""
    import numpy as np
    import torch

    from imagestudio.engine.loader import load_pipeline
    from imagestudio.engine.reference_size import edit_call
    from imagestudio.models.variants import variant_files
    from imagestudio.registry import get_model

    spec = get_model(model_id)
    settings = _settings(models_dir)
    files = variant_files(spec, variant, settings)  # builds a tiny variant before the clock starts
    assert files is not None, f"{model_id} {variant} is not on this machine"
    # The load is timed, not the imports: diffusers and transformers import each class on first use, and
    # ``import sdnq`` pulls in transformers' quantizers (many seconds on a busy machine either way).
    import diffusers
    import transformers

    from imagestudio.engine.loader import import_sdnq

    getattr(diffusers, spec.pipeline_class)
    from diffusers import GGUFQuantizationConfig  # noqa: F401

    getattr(transformers, "Qwen2_5_VLForConditionalGeneration" if spec.is_edit else "Qwen3Model")
    if spec.variant(variant).format == "sdnq":
        import_sdnq("the benchmark")
    started = time.perf_counter()
    pipe = load_pipeline(spec, settings, weights=variant)
    load_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB

    inputs_file = workdir / f"{model_id}-inputs.pt"
    captured: dict[str, Any] = {}

    def capture(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not captured:
            captured["args"], captured["kwargs"] = args, dict(kwargs)

    hook = (
        pipe.transformer.register_forward_pre_hook(capture, with_kwargs=True) if variant == "bf16" else None
    )
    kwargs = _job_kwargs(spec)
    call = (
        edit_call(pipe, spec.reference_vae_area or 0, spec.reference_condition_area or 0)
        if spec.is_edit
        else pipe
    )
    with torch.no_grad():
        image = call(**kwargs).images[0]
    if hook is not None:
        hook.remove()
        torch.save(captured, inputs_file)
    shared = torch.load(inputs_file, weights_only=False)
    with torch.no_grad():
        out = pipe.transformer(*shared["args"], **shared["kwargs"])
    sample = out[0] if isinstance(out, tuple) else out.sample
    if isinstance(sample, list):
        sample = torch.cat([s.flatten() for s in sample])
    np.save(workdir / f"{model_id}-{variant}-out.npy", sample.float().flatten().numpy())
    np.save(workdir / f"{model_id}-{variant}-image.npy", np.asarray(image, dtype=np.float64))
    disk = sum(f.stat().st_size for f in files.transformer_files())
    return {"load_s": load_s, "peak_rss_bytes": peak, "disk_bytes": disk}


def _run_child(model_id: str, variant: str, models_dir: Path, workdir: Path) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.quant",
        "--child",
        model_id,
        variant,
        str(models_dir),
        str(workdir),
    ]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=900, check=False, env=dict(os.environ)
    )
    if done.returncode != 0:
        raise RuntimeError(f"{model_id} {variant} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(models: tuple[str, ...], models_dir: Path, workdir: Path) -> list[QuantRow]:
    """Every variant of ``models`` (bf16 first: the reference), one fresh process each."""
    import numpy as np

    from imagestudio.registry import get_model

    rows: list[QuantRow] = []
    for model_id in models:
        spec = get_model(model_id)
        results = {v.name: _run_child(model_id, v.name, models_dir, workdir) for v in spec.weight_variants}
        ref_out = np.load(workdir / f"{model_id}-bf16-out.npy")
        ref_image = np.load(workdir / f"{model_id}-bf16-image.npy")
        for name, result in results.items():
            out = np.load(workdir / f"{model_id}-{name}-out.npy")
            image = np.load(workdir / f"{model_id}-{name}-image.npy")
            mse = float(np.mean((image - ref_image) ** 2))
            rows.append(
                QuantRow(
                    model=model_id,
                    variant=name,
                    transformer_rel_error=float(np.linalg.norm(out - ref_out) / np.linalg.norm(ref_out)),
                    # output_type="np" images are 0..1
                    image_psnr_db=math.inf if mse == 0 else 10 * math.log10(1.0 / mse),
                    load_s=result["load_s"],
                    peak_rss_mb=result["peak_rss_bytes"] / 1024**2,
                    disk_bytes=result["disk_bytes"],
                )
            )
    return rows


def markdown(rows: list[QuantRow]) -> str:
    lines = [
        "| model | variant | transformer rel. error | image PSNR vs bf16 | load | peak RSS "
        "| transformer on disk |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        psnr = "identical" if math.isinf(r.image_psnr_db) else f"{r.image_psnr_db:.1f} dB"
        lines.append(
            f"| {r.model} | {r.variant} | {r.transformer_rel_error:.4f} | {psnr} | {r.load_s:.2f} s | "
            f"{r.peak_rss_mb:.0f} MB | {r.disk_bytes / 1000:.0f} kB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quant", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(TINY_MODELS), choices=TINY_MODELS)
    parser.add_argument(
        "--models-dir", type=Path, default=None, help="Where the tiny models are (built if absent)."
    )
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table instead of JSON.")
    parser.add_argument(
        "--child", nargs=4, metavar=("MODEL", "VARIANT", "MODELS_DIR", "WORKDIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        model_id, variant, models_dir, workdir = args.child
        print(json.dumps(child(model_id, variant, Path(models_dir), Path(workdir))))
        return 0
    with tempfile.TemporaryDirectory(prefix="imagestudio-quant-") as scratch:
        models_dir = args.models_dir or Path(scratch) / "models"
        rows = measure(tuple(args.models), models_dir, Path(scratch))
    print(markdown(rows) if args.markdown else json.dumps([asdict(r) for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
