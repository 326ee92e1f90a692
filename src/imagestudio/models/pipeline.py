"""What the app uses of a diffusers pipeline, spelled out for the type checker.

Seen through diffusers' ``TYPE_CHECKING`` imports, ``DiffusionPipeline`` is a placeholder class with none
of its methods, so code typed with it checks nothing. Every pipeline the app loads is a
``DiffusionPipeline`` at run time and satisfies this protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


class Pipeline(Protocol):
    """A loaded diffusers pipeline: its components, its call, and the placement switches the plans use."""

    scheduler: Any

    @property
    def components(self) -> dict[str, Any]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def numpy_to_pil(self, images: np.ndarray) -> list[Image.Image]: ...

    def set_progress_bar_config(self, **kwargs: Any) -> None: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def enable_model_cpu_offload(self, *args: Any, **kwargs: Any) -> None: ...

    def enable_sequential_cpu_offload(self, *args: Any, **kwargs: Any) -> None: ...
