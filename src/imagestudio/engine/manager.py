"""The one owner of loaded pipelines.

At most one pipeline is resident at a time (the original documents: "load only one model at a time";
two of these models do not fit a consumer card together). Pipelines are lent out as a context manager
that holds the manager's lock, so the UI/API worker and anything else never run two models at once,
and an out-of-memory error releases the model before it propagates.

Switching models unloads the resident one *before* the next is read from disk: every reference the manager
holds is dropped, garbage is collected and the accelerator's cache emptied, and the memory freed (process
RSS, accelerator bytes) is measured and kept in :attr:`ModelManager.last_unload`. With
``device.keep_in_ram: true`` the pipeline being switched away from is instead moved to CPU RAM and kept
("parked"), when RAM allows, so that switching back costs a copy to the device instead of a read of its files.
At most one pipeline is parked; only the resident one is ever on the accelerator.

Lock order: the manager's lock is the only lock taken here, and it is held for the whole of a lend, a
switch or an unload.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagestudio.engine.loader import PipelineLoader, load_pipeline, load_planned
from imagestudio.errors import ModelNotAvailable, UserError, is_out_of_memory
from imagestudio.hardware import MemorySnapshot, available_ram_bytes, memory_snapshot
from imagestudio.registry import ModelSpec, get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.memory.planner import MemoryPlanner

log = logging.getLogger(__name__)

#: RAM left free after parking a pipeline, beyond what the next model needs to load.
PARK_HEADROOM_BYTES = 2 * 1024**3


@dataclass
class LoadedModel:
    """A pipeline on its device, with what is needed to describe it."""

    spec: ModelSpec
    pipe: Any
    device: str
    placement: str
    dtype: str
    load_seconds: float
    #: The memory plan it was placed with.
    plan: MemoryPlan
    #: Identity of the LoRA set loaded on ``pipe`` (see :mod:`imagestudio.engine.loras`); () = none.
    lora_key: tuple[Any, ...] = field(default=())
    #: Models that work beside the pipeline and go with it (the ControlNet, see engine/control.py).
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UnloadReport:
    """What unloading (or parking) one pipeline did to memory."""

    model_id: str
    #: True when the pipeline was moved to CPU RAM and kept, false when it was dropped.
    kept_in_ram: bool
    #: Bytes of the pipeline's weights and buffers.
    pipeline_bytes: int
    before: MemorySnapshot
    after: MemorySnapshot

    @property
    def rss_freed_bytes(self) -> int:
        return self.before.rss_bytes - self.after.rss_bytes

    @property
    def accelerator_freed_bytes(self) -> int | None:
        if self.before.accelerator_bytes is None or self.after.accelerator_bytes is None:
            return None
        return self.before.accelerator_bytes - self.after.accelerator_bytes

    def describe(self) -> str:
        action = "parked in RAM" if self.kept_in_ram else "unloaded"
        parts = [f"{self.model_id} {action} ({_mib(self.pipeline_bytes)} of weights)"]
        parts.append(f"RSS {_mib(self.before.rss_bytes)} -> {_mib(self.after.rss_bytes)}")
        if self.before.accelerator_bytes is not None and self.after.accelerator_bytes is not None:
            parts.append(
                f"accelerator {_mib(self.before.accelerator_bytes)} -> {_mib(self.after.accelerator_bytes)}"
            )
        return "; ".join(parts)


def _mib(value: int) -> str:
    return f"{value / 1024**2:,.1f} MiB"


class ModelManager:
    """Loads, lends and unloads pipelines; thread-safe; one resident model (plus one parked in RAM).

    Every pipeline is placed by a memory plan: the one the caller lends it for, else ``planner``'s plan
    for the model's default job on this machine.
    """

    def __init__(
        self,
        settings: Settings,
        device: str,
        loader: PipelineLoader = load_pipeline,
        *,
        planner: MemoryPlanner | None = None,
        available_ram: Callable[[], int] | None = None,
    ) -> None:
        self._settings = settings
        self._device = device
        self._loader = loader
        self._planner = planner
        self._available_ram = available_ram or available_ram_bytes
        # Held while a model is lent out: loading, running and unloading never interleave.
        self._lock = threading.RLock()
        self._resident: LoadedModel | None = None
        self._parked: LoadedModel | None = None
        self._last_unload: UnloadReport | None = None

    @property
    def device(self) -> str:
        return self._device

    @property
    def loaded_id(self) -> str | None:
        resident = self._resident
        return resident.spec.id if resident else None

    @property
    def parked_id(self) -> str | None:
        parked = self._parked
        return parked.spec.id if parked else None

    @property
    def last_unload(self) -> UnloadReport | None:
        """The memory report of the most recent unload or park."""
        return self._last_unload

    def status(self) -> dict[str, Any]:
        """A JSON-safe summary (for a system endpoint or ``--verbose`` output)."""
        with self._lock:
            report = self._last_unload
            return {
                "device": self._device,
                "resident": self.loaded_id,
                "parked_in_ram": self.parked_id,
                "last_unload": None
                if report is None
                else {
                    "model": report.model_id,
                    "kept_in_ram": report.kept_in_ram,
                    "pipeline_bytes": report.pipeline_bytes,
                    "rss_freed_bytes": report.rss_freed_bytes,
                    "accelerator_freed_bytes": report.accelerator_freed_bytes,
                },
            }

    @property
    def resident(self) -> LoadedModel | None:
        """The loaded model, for reports (read without the lock: it may change right after)."""
        return self._resident

    @property
    def planner(self) -> MemoryPlanner:
        """Plans the model's default job when a pipeline is lent without a plan (created on first use)."""
        if self._planner is None:
            from imagestudio.memory.planner import MemoryPlanner

            self._planner = MemoryPlanner(self._settings, device=self._device)
        return self._planner

    @contextmanager
    def acquire(self, model_id: str, plan: MemoryPlan | None = None) -> Iterator[LoadedModel]:
        """Lend the pipeline for ``model_id``, loading it (and unloading any other) first.

        With ``plan``, a resident pipeline placed differently is loaded again as planned; without, the
        resident one is lent as it is, and a load is placed by the model's default plan. An out-of-memory
        error while it is lent unloads it (the caller may then step down to a smaller plan).
        """
        with self._lock:
            loaded = self._ensure(model_id, plan)
            try:
                yield loaded
            except Exception as exc:
                if is_out_of_memory(exc):
                    log.warning("out of memory while running %s: unloading it", model_id)
                    del loaded
                    self.unload()
                raise

    @contextmanager
    def hold(self) -> Iterator[LoadedModel | None]:
        """Hold the lock without loading anything, lending the resident model as it is (or None).

        For work beside the pipelines (the prompt enhancer borrows a text encoder) that must not race a
        switch or an unload.
        """
        with self._lock:
            yield self._resident

    def _ensure(self, model_id: str, plan: MemoryPlan | None = None) -> LoadedModel:
        resident = self._resident
        same_placement = plan is None or resident is None or plan.placement == resident.plan.placement
        if resident is not None and resident.spec.id == model_id and same_placement:
            return resident
        spec = get_model(model_id)
        waiting: LoadedModel | None = None
        if self._parked is not None and self._parked.spec.id == model_id:
            waiting, self._parked = self._parked, None  # the slot is free for the resident to park in
        self._switch_out(spec)
        if waiting is not None:
            return self._revive(waiting)
        started = time.perf_counter()
        pipe, plan = self._load(spec, plan)
        self._resident = LoadedModel(
            spec=spec,
            pipe=pipe,
            device=self._device,
            placement=plan.profile,
            dtype=self._settings.model(model_id).torch_dtype,
            load_seconds=time.perf_counter() - started,
            plan=plan,
        )
        log.info(
            "%s ready on %s (%s) in %.1fs", model_id, self._device, plan.profile, self._resident.load_seconds
        )
        return self._resident

    def _load(self, spec: ModelSpec, plan: MemoryPlan | None) -> tuple[Any, MemoryPlan]:
        """Read the pipeline from disk and place it as planned; damaged files become one readable error.

        An out-of-memory error while placing is re-raised as it is, for the OOM recovery to step down.
        """
        import torch

        # diffusers switches torch's process-wide default dtype while it builds a model and restores it
        # only when the build succeeds: a load that fails half-way would leave every later tensor bf16.
        default_dtype = torch.get_default_dtype()
        try:
            if plan is None:
                from imagestudio.engine.weights import plan_with_weights

                plan = plan_with_weights(self.planner.plan(spec), spec, self._settings)
            return load_planned(self._loader, spec, self._settings, self._device, plan), plan
        except UserError:
            free_memory()
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            if is_out_of_memory(exc):
                free_memory()
                raise
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        finally:
            torch.set_default_dtype(default_dtype)
        # Raised outside the except block so the failed load's traceback (whose frames hold half-built
        # modules) is released before collecting, instead of riding along as the new error's context.
        free_memory()
        raise ModelNotAvailable(
            f"{spec.id} could not be loaded; its files may be damaged or incomplete ({detail})",
            param="model",
            code="model_damaged",
            details={"model": spec.id},
        )

    def _revive(self, parked: LoadedModel) -> LoadedModel:
        """Put a pipeline parked in RAM back on the device, placed exactly like a fresh load."""
        from imagestudio.memory.apply import apply_plan

        started = time.perf_counter()
        try:
            apply_plan(parked.pipe, parked.plan, self._device, family=parked.spec.family)
            parked.placement = parked.plan.profile
        except BaseException:
            del parked
            free_memory()
            raise
        parked.device = self._device
        self._resident = parked
        log.info("%s back from RAM in %.1fs", parked.spec.id, time.perf_counter() - started)
        return parked

    def _switch_out(self, next_spec: ModelSpec) -> None:
        """Make room for ``next_spec``: park the resident pipeline in RAM if allowed, else drop it."""
        resident = self._resident
        if resident is None:
            return
        if not (self._settings.device.keep_in_ram and self._can_park(resident, next_spec)):
            del resident  # from here on only self._resident refers to it, so dropping it really frees it
            self._drop_resident()
            return
        self._drop_parked()  # at most one pipeline waits in RAM (the next one was taken out already)
        before = memory_snapshot(self._device)
        self._parked, self._resident = resident, None
        _move_to_ram(resident)
        # Nothing was dropped, so there is no garbage to collect (a full gc.collect() costs ~0.2 s with
        # torch and transformers loaded): only the accelerator's cached blocks are given back.
        free_memory(collect=False)
        after = memory_snapshot(self._device)
        self._record(UnloadReport(resident.spec.id, True, pipeline_bytes(resident.pipe), before, after))

    def _can_park(self, loaded: LoadedModel, next_spec: ModelSpec) -> bool:
        """Room in RAM for this pipeline (if it must move there) and still for the next model to load.

        The next model's need is taken as its download size: an upper bound for bf16 weights, so a tight
        machine drops rather than risks swapping. A pipeline already parked (for a third model) is dropped
        to make the room, so its bytes count as available.
        """
        plan = loaded.plan
        if plan.profile != "full" or plan.weights != "bf16":
            # Offload hooks and fp8/quantized storage cannot be undone and re-applied safely: reload instead.
            log.info(
                "not keeping %s in RAM: its %s/%s placement is rebuilt on load",
                loaded.spec.id,
                plan.profile,
                plan.weights,
            )
            return False
        cost = pipeline_bytes(loaded.pipe) if loaded.device != "cpu" else 0
        needed = cost + next_spec.download_bytes + PARK_HEADROOM_BYTES
        available = self._available_ram()
        if self._parked is not None:  # dropped to make the room (see _switch_out)
            available += pipeline_bytes(self._parked.pipe)
        if available < needed:
            log.info(
                "not keeping %s in RAM: %s available, %s needed",
                loaded.spec.id,
                _mib(available),
                _mib(needed),
            )
            return False
        return True

    def _drop_resident(self) -> None:
        self._drop("_resident")

    def _drop_parked(self) -> None:
        self._drop("_parked")

    def _drop(self, slot: str) -> None:
        """Free the pipeline in ``slot`` (``_resident`` or ``_parked``), measuring memory around it.

        The pipeline is taken out of the slot and out of its ``LoadedModel`` here, so no reference the
        manager ever handed out keeps the weights alive.
        """
        loaded: LoadedModel | None = getattr(self, slot)
        setattr(self, slot, None)
        if loaded is None:
            return
        model_id = loaded.spec.id
        size = pipeline_bytes(loaded.pipe)
        before = memory_snapshot(self._device)
        # Lent-out LoadedModel objects may outlive the lend (a caller reading its fields for metadata while
        # another thread switches models): emptying it makes sure none of them keeps the weights alive.
        loaded.pipe = None
        loaded.lora_key = ()
        del loaded
        free_memory()
        self._record(UnloadReport(model_id, False, size, before, memory_snapshot(self._device)))

    def _record(self, report: UnloadReport) -> None:
        self._last_unload = report
        log.info("%s", report.describe())

    def unload(self) -> str | None:
        """Drop the resident pipeline (and any parked one) and give the memory back; returns the id of the
        resident pipeline that was unloaded (None if none). The memory report is :attr:`last_unload`."""
        with self._lock:
            self._drop_parked()
            model_id = self.loaded_id
            self._drop_resident()
            return model_id


def _move_to_ram(loaded: LoadedModel) -> None:
    """Take ``loaded`` off the accelerator: offload hooks removed, every weight on the CPU.

    Reviving it places it again exactly like a fresh load (its memory plan applied again).
    """
    if loaded.device == "cpu":
        return
    pipe = loaded.pipe
    if loaded.placement != "full" and hasattr(pipe, "remove_all_hooks"):
        pipe.remove_all_hooks()
    pipe.to("cpu")
    loaded.device = "cpu"
    loaded.placement = "cpu"


def pipeline_bytes(pipe: Any) -> int:
    """Bytes of every parameter and buffer of the pipeline's torch modules (shared tensors counted once)."""
    import torch

    seen: set[int] = set()
    total = 0
    for component in getattr(pipe, "components", {}).values():
        if not isinstance(component, torch.nn.Module):
            continue
        for tensor in (*component.parameters(), *component.buffers()):
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def free_memory(*, collect: bool = True) -> None:
    """Collect garbage (pipelines hold reference cycles); give cached accelerator blocks back."""
    if collect:
        gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()
