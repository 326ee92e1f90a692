"""Which weight variant a job runs, put into its memory plan (what the loader then reads).

The request's ``weights`` (or ``models.<id>.weights``) names a variant; ``auto`` is the memory planner's
choice — the best variant present for this machine's plan (:meth:`MemoryPlanner.variant_choices`), which
the plan already carries. A pre-quantized variant is stored as its files are, so
the plan's on-load storage (fp8 casting, NF4, int8) does not apply to it: an explicit
``device.weights`` asking for one is refused in one line rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from imagestudio.errors import InvalidRequest
from imagestudio.models.variants import requested_variant

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.memory.plan import MemoryPlan
    from imagestudio.registry import ModelSpec


def plan_with_weights(
    plan: MemoryPlan, spec: ModelSpec, settings: Settings, requested: str | None = None
) -> MemoryPlan:
    """``plan`` running the variant the request (or config) asks for, with that variant's text encoder.

    ``auto``, or the variant the plan was made for already: the plan as the planner chose it (variant and
    text encoder precision included).
    """
    name = requested or settings.model(spec.id).weights
    if name in ("auto", plan.variant):
        return plan
    variant = requested_variant(spec, settings, name)
    if not variant.quantized:
        return replace(plan, variant=variant.name)
    stored = settings.device.weights
    if stored not in ("auto", "bf16"):
        raise InvalidRequest(
            f"device.weights {stored} cannot apply to {spec.id} {variant.name}, which is stored quantized "
            "already: set device.weights: auto, or run the bf16 weights",
            param="weights",
            code="weights_conflict",
            details={"model": spec.id, "weights": variant.name, "device_weights": stored},
        )
    return replace(plan, variant=variant.name, weights="bf16", text_encoder_weights=variant.encoder)
