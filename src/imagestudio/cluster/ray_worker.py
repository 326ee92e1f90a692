"""The worker actor: one per GPU, holding a Studio (one resident model), running one job at a time.

A job runs as a Ray streaming generator (``num_returns="streaming"``): it yields a step report per
denoising step (with a preview when one is due) and ends with the PNGs and their metadata, so progress
reaches the head while the job runs and the head, not the worker, writes files and history.

Cancellation: ``ray.cancel`` on the generator's ref does not interrupt a running task of a threaded
actor: Ray sets a flag (``ray.get_runtime_context().is_canceled()``) and closes the generator at its
next ``yield`` (``GeneratorExit``). The studio runs in a thread of its own while the task's thread
relays its steps; either signal sets the studio's cancel event, the pipeline stops after its current
step, and the model stays loaded.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.cluster.boxes import WORKER_CONFIG_ENV
from imagestudio.cluster.capacity import (
    SIMULATE_ENV,
    box_hardware,
    box_plans,
    box_upscalers,
    memory_summary,
)
from imagestudio.cluster.work import OutputImage, StepReport, WorkerInfo, WorkResult
from imagestudio.errors import JobCancelled
from imagestudio.jobs.failures import job_error

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.engine.pipeline_calls import StepProgress
    from imagestudio.jobs.local_queue import PreviewMaker
    from imagestudio.jobs.model import JobRequest
    from imagestudio.studio import Studio, StudioResult

log = logging.getLogger(__name__)

#: Test-only: seconds each step of a tiny model waits (see :func:`tiny_step_wait_s`); set on a box.
TINY_STEP_WAIT_ENV = "IMAGESTUDIO_TINY_STEP_WAIT_S"
#: How often the relaying thread looks at Ray's cancel flag while the studio computes a step.
CANCEL_POLL_S = 0.05

# Items of a job's stream: (kind, payload).
STEP, DONE, FAILED, CANCELLED = "step", "done", "failed", "cancelled"


class StudioWorker:
    """The actor's body (wrapped with ``ray.remote`` by the pool); plain Python, so it reads as such."""

    def __init__(self, name: str, settings: dict[str, Any], preview: PreviewMaker | None = None) -> None:
        self.name = name
        self.settings = _worker_settings(settings)
        self.preview = preview
        self.loads = 0
        self.previews = 0
        #: The model of each load, in order (a reload of the same model for a new placement counts).
        self.loaded: list[str] = []
        #: How the last job ended and after how many steps (what a cancel really stopped).
        self.last_job: dict[str, Any] = {}
        self._studio: Studio | None = None
        self._busy = threading.Lock()

    @property
    def studio(self) -> Studio:
        if self._studio is None:
            from imagestudio.studio import Studio

            self._studio = Studio(self.settings)
        return self._studio

    def describe(self) -> WorkerInfo:
        """Where this worker is and what it can run (models, upscalers); called once when it joins."""
        from imagestudio.hardware import resolve_device
        from imagestudio.models.locate import find_model_dir
        from imagestudio.registry import MODELS

        device = resolve_device(self.settings.device.type)
        gpu = None
        if device.startswith("cuda"):
            import torch

            gpu = torch.cuda.get_device_name()
        on_disk = tuple(
            spec.id
            for spec in MODELS.values()
            if spec.tiny or find_model_dir(spec, self.settings, build_tiny=False) is not None
        )
        hardware = box_hardware(self.settings, os.environ.get(SIMULATE_ENV))
        plans = box_plans(self.settings, hardware, device, on_disk)
        return WorkerInfo(
            self.name,
            socket.gethostname(),
            device,
            gpu,
            tuple(fit.model for fit in plans if fit.fits),
            os.getpid(),
            memory=memory_summary(hardware),
            plans=plans,
            address=_node_address(),
            upscalers=box_upscalers(self.settings, hardware),
        )

    def stats(self) -> dict[str, Any]:
        """Loads so far and the resident model (for tests and the benchmark)."""
        resident = self._studio.manager.resident if self._studio is not None else None
        model = resident.spec.id if resident is not None else None
        return {
            "loads": self.loads,
            "loaded": list(self.loaded),
            "model": model,
            "last_job": self.last_job,
            "previews": self.previews,
        }

    def pid(self) -> int:
        return os.getpid()

    def run(self, job_id: str, request: JobRequest) -> Iterator[tuple[str, Any]]:
        """Run one job; yields ``("step", StepReport)`` items, then one of done/failed/cancelled."""
        import ray

        with self._busy:
            steps: queue.Queue[StepReport | None] = queue.Queue()
            cancel = threading.Event()
            outcome: list[tuple[str, Any]] = []

            def work() -> None:
                try:
                    outcome.append((DONE, self._execute(request, steps, cancel)))
                except JobCancelled:
                    outcome.append((CANCELLED, None))
                except BaseException as exc:  # noqa: BLE001 - a failed job, never a dead actor
                    outcome.append((FAILED, job_error(job_id, exc)))
                finally:
                    steps.put(None)

            thread = threading.Thread(target=work, name=f"job-{job_id}", daemon=True)
            thread.start()
            context = ray.get_runtime_context()
            ran = 0
            try:
                while True:
                    if not cancel.is_set() and context.is_canceled():
                        cancel.set()
                    try:
                        item = steps.get(timeout=CANCEL_POLL_S)
                    except queue.Empty:
                        continue
                    if item is None:
                        break
                    ran += 1
                    if not cancel.is_set():
                        yield STEP, item
                thread.join()
                self.last_job = {"id": job_id, "outcome": outcome[0][0], "steps": ran}
                yield outcome[0]
            finally:
                if thread.is_alive():
                    # Closed early: after ray.cancel, Ray closes the stream at its next item
                    # (GeneratorExit at the yield). Stop the studio after its current step and wait
                    # for it, so the next job never runs beside a cancelled one.
                    cancel.set()
                    thread.join()
                    done = outcome[0][0] if outcome else CANCELLED
                    self.last_job = {"id": job_id, "outcome": done, "steps": ran}

    def _execute(
        self, request: JobRequest, steps: queue.Queue[StepReport | None], cancel: threading.Event
    ) -> WorkResult:
        from imagestudio.jobs.dispatch import StudioDispatcher

        studio = self.studio
        before = studio.manager.resident
        wait_s = tiny_step_wait_s(request)

        def on_step(step: StepProgress) -> None:
            if wait_s:
                time.sleep(wait_s)
            steps.put(StepReport(step.image, step.images, step.step, step.steps, self._preview(step)))

        with tempfile.TemporaryDirectory(prefix="imagestudio-worker-") as scratch:
            result = StudioDispatcher(studio, out_dir=Path(scratch))(request, on_step, cancel)
            after = studio.manager.resident
            if after is not None and (before is None or before is not after):
                self.loads += 1
                self.loaded.append(after.spec.id)
            return replace(_work_result(result), loaded=tuple(self.loaded))

    def _preview(self, step: StepProgress) -> Any:
        if self.preview is None:
            return None
        try:
            preview = self.preview(step)
            self.previews += preview is not None
            return preview
        except Exception:  # a broken preview must not fail the job
            log.warning("preview failed", exc_info=True)
            return None


def _work_result(result: StudioResult) -> WorkResult:
    """The studio's files (in a scratch folder) → bytes for the head; the folder is then removed."""
    images = []
    for saved in result.images:
        png, meta = saved.path.read_bytes(), saved.metadata
        images.append(OutputImage(png, saved.path.stem, saved.seed, saved.width, saved.height, meta))
    return WorkResult(result.model, tuple(images), result.elapsed_s, result.extra)


def tiny_step_wait_s(request: JobRequest) -> float:
    """The test-only pause per step for the tiny models (``TINY_STEP_WAIT_ENV``; 0, i.e. off, by default).

    On a 2-core machine the tiny models are compute-bound, so more workers cannot run them faster; a
    pause per step (a sleep, which leaves the CPU free) gives them a GPU-like shape, where a step's time
    is spent off the host's cores, so a benchmark measures the cluster rather than the CPU.
    """
    from imagestudio.registry import MODELS

    spec = MODELS.get(str(getattr(request, "model", "")))
    if spec is None or not spec.tiny:
        return 0.0
    try:
        return max(0.0, float(os.environ.get(TINY_STEP_WAIT_ENV, "0") or 0))
    except ValueError:
        return 0.0


def _node_address() -> str | None:
    """This box's address in the cluster (boxes may share a host name, e.g. in containers)."""
    try:
        import ray

        return str(ray.util.get_node_ip_address())
    except Exception:  # noqa: BLE001 - only a label for /api/system
        return None


def _worker_settings(head: dict[str, Any]) -> Settings:
    """The box's own config when ``imagestudio worker --config`` gave one, else the head's settings."""
    from imagestudio.config import Settings, load_settings

    own = os.environ.get(WORKER_CONFIG_ENV)
    if own:
        return load_settings(Path(own))
    return Settings.model_validate(head)
