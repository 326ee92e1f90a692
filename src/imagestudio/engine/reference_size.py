"""The pixel area Qwen-Image-Edit encodes each reference image at, as a per-call setting.

``QwenImageEditPlusPipeline.__call__`` (diffusers 0.42) resizes every input image to two module-level
constants of ``pipeline_qwenimage_edit_plus``: ``VAE_IMAGE_SIZE`` (1024², the area the VAE encodes, which
becomes reference tokens in every transformer call) and ``CONDITION_IMAGE_SIZE`` (384², what the
vision-language encoder sees). Whatever output size is asked for, those areas decide most of the memory and
time of an edit on small cards (and ~4 s per reference even on the tiny test model).

Why not the obvious alternatives:

* pre-resizing the references does nothing: the pipeline resizes them again, to the constants;
* the resizing happens inline in ``__call__``, not in a method a subclass could override;
* assigning the module constants (what a monkeypatch does) changes them for every pipeline in the process,
  a race as soon as the web UI and the API share it.

So :func:`edit_call` builds a copy of the pipeline's own ``__call__`` function — the same code object —
whose global namespace is a private copy of the module's, with the two constants replaced. Nothing shared
is modified: two calls with different areas, from any threads, each see their own values, and the module
keeps its defaults. The copy is a snapshot taken when :func:`edit_call` runs. The code object is checked
for the two names first, so a diffusers release that renames them fails loudly here instead of silently
ignoring the setting.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

VAE_AREA_NAME = "VAE_IMAGE_SIZE"
CONDITION_AREA_NAME = "CONDITION_IMAGE_SIZE"


def _original_call() -> types.FunctionType:
    from diffusers import QwenImageEditPlusPipeline

    function = inspect.unwrap(QwenImageEditPlusPipeline.__call__)
    names = function.__code__.co_names
    missing = [name for name in (VAE_AREA_NAME, CONDITION_AREA_NAME) if name not in names]
    if missing or function.__code__.co_freevars:
        raise RuntimeError(
            "this diffusers version's QwenImageEditPlusPipeline no longer reads "
            f"{' and '.join(missing) or 'plain module globals'}; the reference-area setting needs updating"
        )
    original: types.FunctionType = function
    return original


def edit_call(pipe: Any, vae_area: int, condition_area: int) -> Callable[..., Any]:
    """``pipe.__call__`` with references encoded at ``vae_area`` / ``condition_area`` pixels.

    Returns a callable taking the pipeline's keyword arguments. ``pipe`` must be a
    ``QwenImageEditPlusPipeline`` (or a subclass that keeps its ``__call__``).
    """
    import torch
    from diffusers import QwenImageEditPlusPipeline

    if not isinstance(pipe, QwenImageEditPlusPipeline):
        raise TypeError(f"expected a QwenImageEditPlusPipeline, got {type(pipe).__name__}")
    original = _original_call()
    namespace = dict(original.__globals__)
    namespace[VAE_AREA_NAME] = int(vae_area)
    namespace[CONDITION_AREA_NAME] = int(condition_area)
    function = types.FunctionType(
        original.__code__, namespace, original.__name__, original.__defaults__, original.__closure__
    )
    function.__kwdefaults__ = original.__kwdefaults__
    # The class attribute is wrapped in torch.no_grad(); the copy must be too (no autograd graph).
    call = torch.no_grad()(function)
    return types.MethodType(call, pipe)
