"""Running a job under a memory plan, and recovering once when the accelerator runs out of memory.

When a job (or loading its model) raises an out-of-memory error, the model manager has already freed
everything (it unloads a model that ran out while lent, and drops a load that ran out while placing);
here the planner steps down to the next plan with a smaller predicted footprint, and the job runs once
more. The result records which plan worked; if the smaller plan also runs out, the job fails with a
one-line :class:`~imagestudio.errors.OutOfMemory` that says what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from imagestudio.errors import OutOfMemory, is_out_of_memory

if TYPE_CHECKING:
    from imagestudio.engine.manager import LoadedModel, ModelManager
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.memory.planner import MemoryPlanner
    from imagestudio.memory.report import MemoryReport
    from imagestudio.registry import ModelSpec

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class PlannedRun(Generic[T]):
    """What a job returned, the model it ran on, the plan that worked and what the job really used."""

    result: T
    loaded: LoadedModel
    plan: MemoryPlan
    report: MemoryReport


def advice(spec: ModelSpec, plan: MemoryPlan) -> str:
    """What a person can change when even ``plan`` runs out of memory."""
    tips = []
    workload = plan.workload
    if workload.width * workload.height > 768 * 768:
        tips.append("a smaller size")
    if workload.input_images > 1:
        tips.append("fewer reference images")
    if plan.weights == "bf16":
        tips.append("device.weights: fp8 (or nf4 with bitsandbytes installed)")
    if plan.accelerator == "cuda":
        tips.append("closing other programs that use the GPU")
    if plan.accelerator == "cpu":
        tips.append("closing other programs or adding RAM/swap")
    return ", ".join(tips) or "a machine with more memory"


class PlannedJobs:
    """Plans, loads and runs jobs on ``manager``'s models; one out-of-memory retry per job.

    Holds the plan of the pipeline it last loaded so the next request can keep that placement.
    """

    def __init__(self, manager: ModelManager, planner: MemoryPlanner) -> None:
        self.manager = manager
        self.planner = planner
        self._last: MemoryPlan | None = None

    def resident_plan(self, model_id: str) -> MemoryPlan | None:
        last = self._last
        return last if last is not None and self.manager.loaded_id == model_id == last.model_id else None

    def run(self, spec: ModelSpec, request: Any, job: Callable[[LoadedModel], T]) -> PlannedRun[T]:
        """Run ``job`` on ``spec``'s pipeline, placed by the plan for ``request``; see the module."""
        from imagestudio.engine.weights import plan_with_weights
        from imagestudio.memory.apply import set_vae_tiling
        from imagestudio.memory.report import begin_job, end_job

        weights = getattr(request, "weights", None)
        settings = self.planner.settings
        plan = plan_with_weights(
            self.planner.plan_for_request(spec, request, self.resident_plan(spec.id)), spec, settings, weights
        )
        if not plan.fits:
            log.warning("%s: %s", spec.id, plan.why)
        tried: list[str] = []
        while True:
            device = self.manager.device
            try:
                begin_job(device)
                with self.manager.acquire(spec.id, plan) as loaded:
                    self._last = plan
                    # Tiling is a switch on the VAE: the resident pipeline follows each request's plan.
                    set_vae_tiling(loaded.pipe, plan.vae_tiling, _tile_pixels(spec))
                    result = job(loaded)
                    report = end_job(device, loaded.pipe, plan, tuple(tried))
                return PlannedRun(result, loaded, plan, report)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                # The manager gave the memory back already (see the module's docstring).
                self._last = None
                tried.append(plan.describe())
                smaller = self.planner.step_down(spec, plan, weights) if len(tried) == 1 else None
                if smaller is not None:
                    smaller = plan_with_weights(smaller, spec, settings, weights)
                if smaller is None:
                    raise OutOfMemory(
                        f"{spec.id} ran out of memory at {plan.workload.describe()} with "
                        f"{' and then '.join(tried)}; try {advice(spec, plan)}",
                        param="memory",
                        code="out_of_memory",
                    ) from None
                log.warning("%s: %s; retrying once", spec.id, smaller.why)
                plan = smaller


def _tile_pixels(spec: ModelSpec) -> int | None:
    from imagestudio.memory.activations import ACTIVATIONS

    model = ACTIVATIONS.get(spec.family)
    return model.vae_tile_pixels if model else None
