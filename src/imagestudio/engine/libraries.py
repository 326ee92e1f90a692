"""The model libraries (torch, diffusers, transformers) imported once, without paying for the cyclic GC.

Importing them creates millions of objects that live as long as the process (modules, classes,
functions, registries). CPython's cyclic collector does not know that: while they are imported it runs
about eight full collections, each walking everything created so far — measured here at ~0.9-1.3 s of a
~6 s cold `imagestudio generate` with the tiny model, paid by every command that runs a model. So the
imports run with the collector paused, and what they created is then moved out of its reach with
:func:`gc.freeze` (the stdlib's tool for exactly this: long-lived start-up objects). Later collections
walk only what comes after: pipelines loaded afterwards are not frozen, so unloading one still frees its
reference cycles. The price is bounded and paid once: whatever else was alive at that moment (in a
server, the first job's own objects) is frozen too, so such of it as later becomes cyclic garbage stays.
"""

from __future__ import annotations

import gc
import sys

#: Imported up front: together they are nearly all of a model command's import time (what a pipeline's
#: own module adds afterwards measured at ~0.03 s). Both sides of diffusers' lazy modules are named: the
#: package alone imports almost nothing.
MODEL_LIBRARIES = (
    "torch",
    "diffusers",
    "diffusers.models.modeling_utils",
    "diffusers.pipelines.pipeline_utils",
    "transformers",
    "transformers.modeling_utils",
)


def import_model_libraries() -> bool:
    """Import :data:`MODEL_LIBRARIES` with the collector paused, then freeze what exists; True if it did.

    Only the first import in a process does this: when torch is already there (a host program, a test
    process, a second call) nothing is imported or frozen, so objects that host made stay collectable.
    """
    if "torch" in sys.modules:
        return False
    collecting = gc.isenabled()
    gc.disable()
    try:
        import importlib

        for name in MODEL_LIBRARIES:
            importlib.import_module(name)
        gc.freeze()
    finally:
        if collecting:
            gc.enable()
    return True
