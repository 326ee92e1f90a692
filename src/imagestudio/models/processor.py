"""The Qwen edit pipeline's processor, with or without torchvision.

In transformers 5.x ``Qwen2VLProcessor`` cannot be built or loaded without torchvision (its video
processor needs it), and torchvision has no build for some torch installs (CPU-only ones among them).
Editing never touches video, so where torchvision is missing we load the same ``processor/`` folder as a
``Qwen2VLProcessor`` subclass whose only parts are the tokenizer and the PIL image processor, and pass
it to ``from_pretrained`` explicitly. Where torchvision is present the real class loads as usual.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import Qwen2VLProcessor

# Qwen2.5-VL's image preprocessing values (CLIP mean/std, 14-pixel patches merged 2x2), as in the real
# ``processor/preprocessor_config.json``; the video config is written too so that the real
# ``Qwen2VLProcessor`` (which needs a video processor) loads a tiny folder when torchvision is present.
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
QWEN_VL_PIXELS = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16384}
_QWEN_VIDEO_PREPROCESSOR_CONFIG: dict[str, Any] = {
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": _CLIP_MEAN,
    "image_std": _CLIP_STD,
    "merge_size": 2,
    "patch_size": 14,
    "processor_class": "Qwen2VLProcessor",
    "resample": 3,
    "rescale_factor": 1 / 255,
    "size": dict(QWEN_VL_PIXELS),
    "temporal_patch_size": 2,
    "video_processor_type": "Qwen2VLVideoProcessor",
}
REAL_PROCESSOR_CLASS = "Qwen2VLProcessor"


@functools.cache
def torchvision_free_processor_class() -> type[Qwen2VLProcessor]:
    """``Qwen2VLProcessor`` without its video processor (created once, on first use).

    In transformers 5.23 ``Qwen2VLProcessor`` cannot be built or loaded without torchvision: its video
    processor requires it, and there is no CPU torchvision wheel for this torch. Image editing never
    touches video, so a subclass whose only sub-processors are the tokenizer and the PIL image processor
    does the whole job. ``ProcessorMixin`` derives the sub-processors from the ``__init__`` signature,
    which is why the signature (not just the body) drops ``video_processor``.

    ``save_pretrained`` writes the real repository's layout (tokenizer files, ``preprocessor_config.json``
    and ``video_preprocessor_config.json`` naming the real classes) instead of a ``processor_config.json``
    naming this subclass, so that the real ``Qwen2VLProcessor`` can load the folder where torchvision is
    installed (a test checks it there; it is skipped here) and :func:`load_processor_without_torchvision`
    where it is not.
    """
    from transformers import Qwen2VLProcessor

    class TorchvisionFreeQwen2VLProcessor(Qwen2VLProcessor):
        """Qwen2VLProcessor minus the video processor; image + text only."""

        def __init__(
            self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None
        ) -> None:
            super().__init__(
                image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
            )

        def save_pretrained(self, save_directory: Any, push_to_hub: bool = False, **kwargs: Any) -> list[str]:
            if push_to_hub:
                raise NotImplementedError("the torchvision-free processor is never pushed to a hub")
            folder = Path(save_directory)
            folder.mkdir(parents=True, exist_ok=True)
            self.tokenizer._set_processor_class(REAL_PROCESSOR_CLASS)
            self.tokenizer.save_pretrained(folder)
            image_config = self.image_processor.to_dict()
            image_config["image_processor_type"] = "Qwen2VLImageProcessor"
            image_config["processor_class"] = REAL_PROCESSOR_CLASS
            written = [folder / "preprocessor_config.json", folder / "video_preprocessor_config.json"]
            for path, config in zip(written, (image_config, _QWEN_VIDEO_PREPROCESSOR_CONFIG), strict=True):
                path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            return [str(p) for p in written]

    TorchvisionFreeQwen2VLProcessor.__module__ = __name__
    TorchvisionFreeQwen2VLProcessor.__qualname__ = "TorchvisionFreeQwen2VLProcessor"
    return TorchvisionFreeQwen2VLProcessor


def __getattr__(name: str) -> Any:
    # The subclass is created on first use (it needs transformers); exposing it as a lazy module attribute
    # keeps its qualified name resolvable, so instances pickle and copy like any other processor.
    if name == "TorchvisionFreeQwen2VLProcessor":
        return torchvision_free_processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def needs_processor_workaround() -> bool:
    """True when torchvision is missing, i.e. when the real ``Qwen2VLProcessor`` cannot be loaded.

    Checked with ``find_spec`` so that asking does not import torchvision (slow, and import side effects).
    """

    return importlib.util.find_spec("torchvision") is None


def load_processor_without_torchvision(path: Path | str) -> Qwen2VLProcessor:
    """Load a ``processor/`` folder (real or tiny) as a video-less ``Qwen2VLProcessor`` subclass.

    Use it when :func:`needs_processor_workaround` is true and pass the result explicitly:
    ``QwenImageEditPlusPipeline.from_pretrained(folder, processor=..., torch_dtype=...)``; the pipeline
    accepts it because it is a ``Qwen2VLProcessor``, and ``model_index.json`` keeps naming the real class.
    The image processor is loaded as ``Qwen2VLImageProcessorPil`` by name rather than through
    ``AutoImageProcessor``, which would reach for the torchvision backend first.
    """
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

    folder = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder)
    return torchvision_free_processor_class()(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=getattr(tokenizer, "chat_template", None),
    )


def load_edit_processor(folder: Path) -> Qwen2VLProcessor | None:
    """The processor to pass to ``from_pretrained``: None (let diffusers load the real one) when
    torchvision is installed, else the torchvision-free subclass loaded from ``folder``."""
    return load_processor_without_torchvision(folder) if needs_processor_workaround() else None
