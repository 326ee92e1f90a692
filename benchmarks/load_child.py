"""One pipeline load in a fresh process, measuring its memory: ``python -m benchmarks.load_child``.

Usage: ``python -m benchmarks.load_child app|plain FOLDER WORKDIR``; prints one JSON object.

The load is measured until every weight is really in RAM: the load itself, the placement on the device
(on a CPU, nothing) and one read of every weight. safetensors files are memory-mapped and a load whose
dtype matches the files' leaves the weights as views of the mapping, so a load alone touches almost
nothing — the pages come in on first use. Reading each weight once makes the figure the RAM the model
really occupies when it runs.

* ``app`` loads through the app's loader (``imagestudio.engine.loader.load_pipeline``) with the folder
  configured as the ``tiny-z-image`` model's ``path`` (the loader's documented way to use a local folder);
* ``plain`` calls ``ZImagePipeline.from_pretrained(FOLDER, torch_dtype=torch.bfloat16)``.

Both modes import the same modules first, then the baseline RSS is read and the kernel's peak-RSS mark
(VmHWM) is reset through ``/proc/self/clear_refs``, so the peak after the load is the load's own, exact,
unsampled. A sampling thread additionally records the peak of anonymous and file-backed resident memory
separately: safetensors files are memory-mapped, and mapped file pages count in RSS although the kernel
can drop them at any time, whereas anonymous pages are what really has to fit in RAM.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
from pathlib import Path

_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def read_status() -> dict[str, int]:
    """The process's memory counters from ``/proc/self/status``, in bytes."""
    values: dict[str, int] = {}
    with Path("/proc/self/status").open(encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in _FIELDS:
                values[key] = int(rest.split()[0]) * 1024
    return values


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


class PeakSampler:
    """Samples anonymous and file-backed RSS every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.peak_anon = 0
        self.peak_file = 0
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        status = read_status()
        self.peak_anon = max(self.peak_anon, status.get("RssAnon", 0))
        self.peak_file = max(self.peak_file, status.get("RssFile", 0))
        self.peak_rss = max(self.peak_rss, status.get("VmRSS", 0))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self) -> PeakSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _module_bytes(pipe: object) -> int:
    import torch

    total = 0
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            tensors = [*component.parameters(), *component.buffers()]
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def _touch_every_weight(pipe: object) -> None:
    """Read every weight once (a max over it), bringing mapped pages into RAM as a first forward would."""
    import torch

    with torch.no_grad():
        for component in getattr(pipe, "components", {}).values():
            if isinstance(component, torch.nn.Module):
                for tensor in [*component.parameters(), *component.buffers()]:
                    if tensor.numel():
                        tensor.detach().max()  # reads every byte, allocates nothing sizeable


def main(argv: list[str]) -> dict[str, object]:
    mode, folder, workdir = argv[0], Path(argv[1]), Path(argv[2])
    # Identical imports in both modes, before the baseline is taken.
    import diffusers
    import torch
    import transformers  # noqa: F401
    from diffusers import ZImagePipeline

    from imagestudio.config import load_settings
    from imagestudio.engine.loader import load_pipeline, load_planned
    from imagestudio.memory.planner import MemoryPlanner
    from imagestudio.registry import get_model

    diffusers.utils.logging.disable_progress_bar()
    settings = load_settings(
        None,
        {
            "models": {"tiny-z-image": {"path": str(folder)}},
            "storage": {"models_dir": str(workdir / "models"), "outputs_dir": str(workdir / "outputs")},
        },
        environ={"IMAGESTUDIO_HOME": str(workdir / "home")},
        cwd=workdir,
    )
    gc.collect()
    time.sleep(0.05)
    before = read_status()
    exact_peak = reset_peak()
    started = time.perf_counter()
    with PeakSampler() as sampler:
        if mode == "app":
            # What the model manager does: plan for this machine, load, then place as the plan says.
            spec = get_model("tiny-z-image")
            plan = MemoryPlanner(settings, device="cpu").plan(spec)
            pipe = load_planned(load_pipeline, spec, settings, "cpu", plan)
        elif mode == "plain":
            pipe = ZImagePipeline.from_pretrained(folder, torch_dtype=torch.bfloat16)
            pipe.to("cpu")
        else:
            raise SystemExit(f"unknown mode {mode!r}: app or plain")
        load_s = time.perf_counter() - started
        loaded = read_status()
        load_only_peak = loaded["VmHWM"] if exact_peak else sampler.peak_rss
        _touch_every_weight(pipe)
    after = read_status()
    peak_rss = after["VmHWM"] if exact_peak else sampler.peak_rss
    return {
        "mode": mode,
        "load_s": load_s,
        "load_only_peak_rss": load_only_peak,
        "baseline_rss": before["VmRSS"],
        "baseline_anon": before["RssAnon"],
        "baseline_file": before["RssFile"],
        "peak_rss": peak_rss,
        "peak_exact": exact_peak,
        "peak_anon_sampled": sampler.peak_anon,
        "peak_file_sampled": sampler.peak_file,
        "final_rss": after["VmRSS"],
        "final_anon": after["RssAnon"],
        "module_bytes": _module_bytes(pipe),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
