"""Measure activation memory by running the real model code on meta tensors.

A forward pass on the meta device allocates nothing, but every operator still produces tensors of the
real shapes and dtypes. Counting the bytes of the storages that are alive after each operator gives the
peak tensor memory of a forward — the quantity ``torch.cuda.max_memory_allocated`` reports on a GPU, minus
allocator rounding and kernel workspaces — without a GPU and in well under a second.

Attention is the one place where device matters: on CUDA, PyTorch's SDPA runs flash or memory-efficient
kernels that never hold the S×S score matrix, while on meta it falls back to the math decomposition that
does. The tracer therefore replaces ``scaled_dot_product_attention`` with a stand-in that allocates what
those kernels allocate: the output and a float32 log-sum-exp per query.

This is how the coefficients in :mod:`imagestudio.memory.activations` were obtained, and the tests re-run it
to keep them true to the installed diffusers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def peak_tensor_bytes(call: Callable[[], Any], keep: Iterable[torch.Tensor] = ()) -> int:
    """Peak bytes of tensors created while ``call()`` runs (meta tensors welcome).

    Storages of the tensors in ``keep`` (weights, inputs) and views of them are not counted: only what
    the computation itself allocates. The result of ``call`` counts until it is dropped.
    """
    import torch
    import torch.nn.functional as F
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    # torch's storage references and dispatch modes are unannotated internals.
    skip = {StorageWeakRef(t.untyped_storage()).cdata for t in keep}  # type: ignore[no-untyped-call]

    class LiveBytes(TorchDispatchMode):  # type: ignore[no-untyped-call]
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.live: dict[int, tuple[Any, int]] = {}
            self.current = 0
            self.peak = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            # Drop what died since the last operator first: while this one runs, its inputs and outputs
            # are alive together, and nothing else that was freed is.
            for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
                self.current -= self.live.pop(key)[1]
            out = func(*args, **(kwargs or {}))
            for value in tree_flatten(out)[0]:
                if isinstance(value, torch.Tensor):
                    storage = value.untyped_storage()
                    ref = StorageWeakRef(storage)  # type: ignore[no-untyped-call]
                    if ref.cdata not in self.live and ref.cdata not in skip:
                        self.live[ref.cdata] = (ref, storage.nbytes())
                        self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
            return out

    class EfficientAttention(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            if func is not F.scaled_dot_product_attention:
                return func(*args, **kwargs)
            names = ("query", "key", "value")
            query, _, value = (*args, *(kwargs[n] for n in names[len(args) :]))[:3]
            # What flash / memory-efficient kernels allocate: the output and a float32 log-sum-exp.
            lse = torch.empty(query.shape[:-1], dtype=torch.float32, device=query.device)
            out = torch.empty((*query.shape[:-1], value.shape[-1]), dtype=query.dtype, device=query.device)
            del lse
            return out

    tracker = LiveBytes()
    with torch.no_grad(), EfficientAttention(), tracker:
        result = call()
        del result
    return tracker.peak
