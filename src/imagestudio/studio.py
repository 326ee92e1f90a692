"""The studio service: validated request → memory plan → model manager → pipeline calls → files on disk.

This is the one place a request becomes images. The CLI calls it in-process; the job queue's worker
calls it for the UI and the API. It owns the model manager (and so the accelerator).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio import __version__
from imagestudio.engine.loras import activate_loras, lightning_ref, resolve_lora, resolve_loras
from imagestudio.engine.pipeline_calls import (
    CheckedImage,
    ProgressCallback,
    edit_kwargs,
    generate_kwargs,
    image_pipeline,
    run_pipeline,
)
from imagestudio.engine.prompt_tokens import prompt_token_warnings
from imagestudio.engine.variety import variety_call
from imagestudio.registry import get_model
from imagestudio.storage.files import image_basename, write_new_files
from imagestudio.storage.metadata import png_bytes
from imagestudio.storage.saved_image import SavedImage, new_image_id

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.engine.enhance import EnhanceResult
    from imagestudio.engine.loras import ResolvedLora
    from imagestudio.engine.manager import LoadedModel, ModelManager
    from imagestudio.engine.planned_jobs import PlannedJobs, PlannedRun
    from imagestudio.job_requests import EditRequest, EnhanceRequest, GenerateRequest, UpscaleRequest
    from imagestudio.memory.planner import MemoryPlanner
    from imagestudio.storage.hashes import HashCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudioResult:
    """What one request made: its images, already written (all or none), and what to report about it."""

    model: str
    images: list[SavedImage]
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "images": [
                {"path": str(img.path), "seed": img.seed, "width": img.width, "height": img.height}
                for img in self.images
            ],
            "model": self.model,
            "elapsed_s": round(self.elapsed_s, 3),
            **self.extra,
        }


class Studio:
    """Runs requests; one instance per process, created by the edge that needs it."""

    def __init__(
        self, settings: Settings, manager: ModelManager | None = None, planner: MemoryPlanner | None = None
    ) -> None:
        self.settings = settings
        self._manager = manager
        self._manager_lock = threading.Lock()
        self._planner = planner
        self._planned_jobs: PlannedJobs | None = None
        self._hash_cache: HashCache | None = None

    @property
    def manager(self) -> ModelManager:
        # Created on first use: resolving the device imports torch, which a --help must not pay for.
        with self._manager_lock:
            if self._manager is None:
                from imagestudio.engine.libraries import import_model_libraries
                from imagestudio.engine.manager import ModelManager
                from imagestudio.hardware import resolve_device

                import_model_libraries()
                self._manager = ModelManager(self.settings, resolve_device(self.settings.device.type))
            return self._manager

    @property
    def planned_jobs(self) -> PlannedJobs:
        """Plans each job's memory, loads through the manager and recovers from out-of-memory once."""
        manager = self.manager
        with self._manager_lock:
            if self._planned_jobs is None:
                from imagestudio.engine.planned_jobs import PlannedJobs

                # The manager's planner (its default plans) unless the studio was given its own.
                self._planned_jobs = PlannedJobs(manager, self._planner or manager.planner)
            return self._planned_jobs

    def generate(
        self,
        request: GenerateRequest,
        out_dir: Path | None = None,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> StudioResult:
        """Text-to-image, or img2img / inpaint when the request has an init image (and a mask).

        ``request`` is resolved here if it was not already.
        """
        request = request.resolved(self.settings)
        loras = resolve_loras(request.loras)
        if request.control is not None:
            from imagestudio.engine.detectors import require_map_detector

            require_map_detector(self.settings, request.model, request.control.type)
        started = time.perf_counter()

        # What the hires pass or the control adds to the metadata.
        hires: dict[str, Any] = {}

        def job(loaded: LoadedModel) -> list[CheckedImage]:
            use_loras(loaded, loras)
            if request.control is not None:
                from imagestudio.engine.control_jobs import run_controlled

                images, record = run_controlled(
                    self.settings, loaded, request, on_step=on_step, cancel=cancel
                )
                hires.update(record)
            else:
                pipe = image_pipeline(loaded.pipe, request)
                images = run_pipeline(
                    pipe,
                    generate_kwargs(request),
                    request.seeds(),
                    steps=request.steps or 0,
                    dtype=loaded.dtype,
                    on_step=on_step,
                    cancel=cancel,
                    call=variety_call(pipe, request.variety) if request.variety > 0 else None,
                    progress_steps=request.denoising_steps(),
                )
            # The control steers the first pass (the composition); the hires pass redraws its detail.
            if request.hires_scale is None:
                return images
            from imagestudio.engine.hires import hires_pass

            images, record = hires_pass(
                self.settings, loaded, request, images, on_step=on_step, cancel=cancel
            )
            hires.update(record)
            return images

        run = self.planned_jobs.run(get_model(request.model), request, job)
        return self._finish(run, request, loras, started, out_dir, hires)

    def edit(
        self,
        request: EditRequest,
        out_dir: Path | None = None,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> StudioResult:
        """Edit 1-3 input images with an instruction. ``request`` is resolved here if it was not already.

        Every LoRA file (the Lightning one included) is found before the model loads, so a missing file
        fails in a second, not after minutes of loading.
        """
        from imagestudio.engine.reference_size import edit_call
        from imagestudio.engine.schedulers import scheduler_overrides

        request = request.resolved(self.settings)
        loras = resolve_loras(request.loras)
        if request.lightning is not None:
            ref, size = lightning_ref(get_model(request.model), request.lightning)
            loras.insert(0, resolve_lora(ref, size_hint=size))
        started = time.perf_counter()

        spec = get_model(request.model)
        # Lightning samples on the schedule it was distilled with, for this job only.
        schedule = dict(spec.lightning_scheduler) if request.lightning is not None else {}

        def job(loaded: LoadedModel) -> list[CheckedImage]:
            use_loras(loaded, loras)
            with scheduler_overrides(loaded.pipe, schedule):
                return run_pipeline(
                    loaded.pipe,
                    edit_kwargs(request),
                    request.seeds(),
                    steps=request.steps or 0,
                    dtype=loaded.dtype,
                    on_step=on_step,
                    cancel=cancel,
                    call=edit_call(
                        loaded.pipe, request.reference_vae_area or 0, request.reference_condition_area or 0
                    ),
                )

        run = self.planned_jobs.run(get_model(request.model), request, job)
        return self._finish(run, request, loras, started, out_dir)

    def enhance(self, request: EnhanceRequest, cancel: threading.Event | None = None) -> EnhanceResult:
        """Rewrite a prompt with the model's own text encoder (see :mod:`imagestudio.engine.enhance`)."""
        from imagestudio.engine.enhance import PromptEnhancer

        return PromptEnhancer(self.settings, self.manager).enhance(request.resolved(self.settings), cancel)

    def upscale(
        self,
        request: UpscaleRequest,
        out_dir: Path | None = None,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> StudioResult:
        """Enlarge one picture with an upscaler, tile by tile (see :mod:`imagestudio.engine.upscale`)."""
        from imagestudio.engine.upscale_jobs import run_upscale

        request = request.resolved(self.settings)
        started = time.perf_counter()
        image, fields = run_upscale(self.settings, self.manager, request, on_step=on_step, cancel=cancel)
        elapsed = time.perf_counter() - started
        meta = {
            **request.metadata_fields(),
            **fields,
            "task": "upscale",
            "app_version": __version__,
            "elapsed_s": round(elapsed, 3),
        }
        extra = {"upscale": {"upscaler": request.upscaler, "scale": request.scale, "plan": fields["plan"]}}
        return StudioResult(
            request.model, self._save([CheckedImage(image, 0)], meta, out_dir), elapsed, extra
        )

    def _finish(
        self,
        run: PlannedRun[list[CheckedImage]],
        request: GenerateRequest | EditRequest,
        loras: list[ResolvedLora],
        started: float,
        out_dir: Path | None,
        extra_fields: dict[str, Any] | None = None,
    ) -> StudioResult:
        """Metadata (request, LoRAs, memory report) on every image, files written, the result described."""
        images, loaded = run.result, run.loaded
        elapsed = time.perf_counter() - started
        hashes = self.hash_cache
        fields = {**with_loras(request.metadata_fields(), loras, hashes), **(extra_fields or {})}
        base = self._metadata(loaded, fields, elapsed / len(images))
        base["memory"] = run.report.as_dict()
        memory = {"plan": run.plan.describe(), "recovered_from": list(run.report.recovered_from)}
        extra: dict[str, Any] = {"memory": memory, "weights": run.plan.variant}
        # A prompt past the model's token limit is cut by the pipeline; say so where the user looks.
        warnings = prompt_token_warnings(loaded.pipe, request.prompt)
        if warnings:
            base["warnings"] = extra["warnings"] = warnings
            for warning in warnings:
                log.warning("%s", warning)
        return StudioResult(request.model, self._save(images, base, out_dir), elapsed, extra)

    def _metadata(
        self, loaded: LoadedModel, fields: dict[str, Any], elapsed_per_image: float
    ) -> dict[str, Any]:
        import diffusers
        import torch

        return {
            **fields,
            "task": loaded.spec.task,
            "model_repo": loaded.spec.repo_id,
            "dtype": loaded.dtype,
            "device": loaded.device,
            "placement": loaded.placement,
            # The weight variant that ran, and its text encoder's precision when not bf16.
            "weights": loaded.plan.variant,
            **(
                {"text_encoder_weights": loaded.plan.text_encoder_weights}
                if loaded.plan.text_encoder_weights != "bf16"
                else {}
            ),
            "app_version": __version__,
            "diffusers_version": diffusers.__version__,
            "torch_version": torch.__version__,
            "elapsed_s": round(elapsed_per_image, 3),
            **({"model_hash": digest} if (digest := self._model_hash(loaded)) else {}),
        }

    @property
    def hash_cache(self) -> HashCache:
        """Digests of weight files, next to the history (computed once per file version)."""
        from imagestudio.storage.hashes import HashCache

        with self._manager_lock:
            if self._hash_cache is None:
                self._hash_cache = HashCache(self.settings.history_db.parent / "hashes.json")
            return self._hash_cache

    def _model_hash(self, loaded: LoadedModel) -> str | None:
        """A1111's short ``Model hash`` of the transformer file(s) that made the image (a GGUF variant's
        file, an SDNQ folder's transformer, or the model's own)."""
        from imagestudio.models.variants import variant_files
        from imagestudio.storage.hashes import weights_hash

        files = variant_files(loaded.spec, loaded.plan.variant, self.settings, build_tiny=False)
        return weights_hash(self.hash_cache, files.transformer_files() if files is not None else [])

    def _save(
        self, images: list[CheckedImage], base: dict[str, Any], out_dir: Path | None
    ) -> list[SavedImage]:
        directory = out_dir or self.settings.outputs_dir
        metas = [
            {
                **base,
                "seed": item.seed,
                "width": item.image.width,
                "height": item.image.height,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            for item in images
        ]
        # All of a job's images or none (see write_new_files).
        paths = write_new_files(
            directory,
            [
                (image_basename(meta["prompt"], item.seed), ".png", png_bytes(item.image, meta))
                for item, meta in zip(images, metas, strict=True)
            ],
        )
        saved = []
        for item, meta, path in zip(images, metas, paths, strict=True):
            log.info("wrote %s", path)
            saved.append(
                SavedImage(new_image_id(), path, item.seed, item.image.width, item.image.height, meta)
            )
        return saved


def use_loras(loaded: LoadedModel, loras: list[ResolvedLora]) -> None:
    """Make exactly ``loras`` active on the lent pipeline (the manager's lock is held by the caller)."""
    previous, loaded.lora_key = loaded.lora_key, ()
    loaded.lora_key = activate_loras(loaded.pipe, previous, loras)


def with_loras(
    fields: dict[str, Any], loras: list[ResolvedLora], hashes: HashCache | None = None
) -> dict[str, Any]:
    """Metadata fields with the LoRAs as actually loaded (file name, size, scale; with ``hashes``, the
    name and SHA-256 that other tools know them by)."""
    if not loras:
        return fields
    from imagestudio.storage.hashes import LORA_HASH_CHARS, lora_name

    described = []
    for lora in loras:
        entry = {**lora.metadata(), "name": lora_name(lora.ref.source)}
        if hashes is not None:
            try:
                entry["sha256"] = hashes.sha256([lora.path])[:LORA_HASH_CHARS]
            except OSError as exc:
                log.warning("could not hash the LoRA %s: %s", lora.path, exc)
        described.append(entry)
    return {**fields, "loras": described}
