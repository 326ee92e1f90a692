"""The model libraries are imported with the cyclic GC paused and frozen afterwards — once, and only by the
import that brings torch in; what is made after the freeze (a loaded pipeline) stays collectable."""

from __future__ import annotations

from tests.helpers import python_output

FIRST_IMPORT = """
import gc, sys, weakref
from imagestudio.engine.libraries import MODEL_LIBRARIES, import_model_libraries
assert "torch" not in sys.modules
print(import_model_libraries(), all(name in sys.modules for name in MODEL_LIBRARIES), gc.isenabled())
frozen = gc.get_freeze_count()
print(frozen > 100_000)
import torch
layer = torch.nn.Linear(2, 2)
cycle = [layer]
cycle.append(cycle)  # a reference cycle, as pipelines have: only the collector frees it
alive = weakref.ref(layer)
del layer, cycle
gc.collect()
print(alive() is None, import_model_libraries(), gc.get_freeze_count() == frozen)
"""

HOST_IMPORTED_TORCH = """
import gc, sys
import torch
from imagestudio.engine.libraries import import_model_libraries
print(import_model_libraries(), gc.get_freeze_count(), "diffusers" in sys.modules)
"""


def test_the_first_import_freezes_the_libraries_and_later_objects_stay_collectable() -> None:
    assert python_output(FIRST_IMPORT).split() == ["True", "True", "True", "True", "True", "False", "True"]


def test_a_process_that_imported_torch_itself_is_left_as_it_is() -> None:
    assert python_output(HOST_IMPORTED_TORCH).split() == ["False", "0", "False"]
