"""The one owner of loaded pipelines.

At most one pipeline is resident at a time (the original documents: "load only one model at a time";
two of these models do not fit a consumer card together). Pipelines are lent out as a context manager
that holds the manager's lock, so the UI/API worker and anything else never run two models at once,
and an out-of-memory error releases the model before it propagates.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.engine.loader import load_pipeline, place_pipeline
from imagestudio.registry import ModelSpec, get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings

log = logging.getLogger(__name__)

Loader = Callable[[ModelSpec, "Settings"], Any]


@dataclass
class LoadedModel:
    """A pipeline on its device, with what is needed to describe it."""

    spec: ModelSpec
    pipe: Any
    device: str
    placement: str
    dtype: str
    load_seconds: float


class ModelManager:
    """Loads, lends and unloads pipelines; thread-safe; one resident model."""

    def __init__(self, settings: Settings, device: str, loader: Loader = load_pipeline) -> None:
        self._settings = settings
        self._device = device
        self._loader = loader
        # Held while a model is lent out: loading, running and unloading never interleave.
        self._lock = threading.RLock()
        self._resident: LoadedModel | None = None

    @property
    def device(self) -> str:
        return self._device

    @property
    def loaded_id(self) -> str | None:
        resident = self._resident
        return resident.spec.id if resident else None

    @property
    def resident(self) -> LoadedModel | None:
        """The loaded model, for reports (read without the lock: it may change right after)."""
        return self._resident

    @contextmanager
    def acquire(self, model_id: str) -> Iterator[LoadedModel]:
        """Lend the pipeline for ``model_id``, loading it (and unloading any other) first."""
        with self._lock:
            loaded = self._ensure(model_id)
            try:
                yield loaded
            except Exception as exc:
                if is_out_of_memory(exc):
                    log.warning("out of memory while running %s: unloading it", model_id)
                    self.unload()
                raise

    def _ensure(self, model_id: str) -> LoadedModel:
        if self._resident is not None and self._resident.spec.id == model_id:
            return self._resident
        spec = get_model(model_id)
        self.unload()
        started = time.perf_counter()
        pipe = self._loader(spec, self._settings)
        placement = place_pipeline(pipe, self._device, self._settings)
        self._resident = LoadedModel(
            spec=spec,
            pipe=pipe,
            device=self._device,
            placement=placement,
            dtype=self._settings.model(model_id).torch_dtype,
            load_seconds=time.perf_counter() - started,
        )
        log.info(
            "%s ready on %s (%s) in %.1fs", model_id, self._device, placement, self._resident.load_seconds
        )
        return self._resident

    def unload(self) -> str | None:
        """Drop the resident pipeline and give its memory back; returns the id that was unloaded."""
        with self._lock:
            resident, self._resident = self._resident, None
            if resident is None:
                return None
            model_id = resident.spec.id
            del resident
            free_memory()
            log.info("unloaded %s", model_id)
            return model_id


def free_memory() -> None:
    """Collect garbage and return cached accelerator blocks to the driver."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
