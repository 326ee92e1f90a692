"""A pipeline's text encoder as a chat model: what *Improve prompt* generates with.

Z-Image-Turbo's encoder is loaded by diffusers as the bare ``Qwen3Model``; :func:`causal_lm_over` puts a
causal-LM head over it that *is* the embedding matrix (Qwen3-4B ties them), so no weight is copied.
Qwen-Image-Edit-2511's ``Qwen2_5_VLForConditionalGeneration`` carries its own head and reads pictures
through its processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ChatModel:
    """A causal LM ready to generate, with what reads its input."""

    model: Any
    tokenizer: Any
    #: Qwen2.5-VL's processor (images + text); None for a text-only model.
    processor: Any
    #: Where inputs go (the pipeline's execution device when borrowed).
    device: Any
    source: str


def causal_lm_over(encoder: Any) -> Any:
    """A ``Qwen3ForCausalLM`` whose body *is* ``encoder`` (a loaded ``Qwen3Model``): no weight copied.

    Its head multiplies by the embedding matrix (Qwen3-4B ties them), moved to the hidden state's device
    when an offload hook left it elsewhere.
    """
    import copy

    import torch
    from transformers import Qwen3ForCausalLM

    config = copy.deepcopy(encoder.config)
    config.tie_word_embeddings = True
    with torch.device("meta"):
        model = Qwen3ForCausalLM(config)
    model.model = encoder
    model.lm_head = tied_head(encoder.get_input_embeddings())
    model.eval()  # type: ignore[no-untyped-call]  # transformers leaves it unannotated
    return model


def _tied_head_class() -> type:
    import torch

    class TiedHead(torch.nn.Module):
        def __init__(self, embedding: torch.nn.Embedding) -> None:
            super().__init__()
            self.embedding = embedding

        def forward(self, hidden: torch.Tensor) -> torch.Tensor:
            weight = self.embedding.weight
            return torch.nn.functional.linear(hidden, weight.to(hidden.device, hidden.dtype))

    return TiedHead


def tied_head(embedding: Any) -> Any:
    """An output head that multiplies by ``embedding``'s weight (no copy kept)."""
    return _tied_head_class()(embedding)


def load_processor(folder: Any) -> Any:
    from imagestudio.models.processor import load_edit_processor

    processor = load_edit_processor(folder)
    if processor is None:
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(folder)  # type: ignore[no-untyped-call]  # unannotated
    return processor


def input_device(model: Any) -> Any:
    """Where inputs go: the first device of a ``device_map``, else the model's own device."""
    device_map = getattr(model, "hf_device_map", None)
    if device_map:
        first = next(iter(device_map.values()))
        return f"cuda:{first}" if isinstance(first, int) else first
    return model.device
