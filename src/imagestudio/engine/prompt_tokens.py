"""Saying when a prompt is longer than the model reads.

Z-Image's pipeline tokenizes the prompt (inside its chat template) with ``truncation=True`` at
``max_sequence_length`` (512): the rest of a long prompt is silently dropped. We count the same tokens
the same way and turn a cut into a warning in the image's metadata and the job's record, so a user
whose prompt's end had no effect can see why. Qwen-Image-Edit's pipeline does not cut its prompt.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: diffusers' ZImagePipeline default (its ``__call__`` and ``_encode_prompt``); we never change it.
Z_IMAGE_MAX_TOKENS = 512


def prompt_token_warnings(pipe: Any, prompt: str) -> list[str]:
    """Warnings for a prompt the pipeline will cut; empty when it fits or the pipeline does not cut."""
    if type(pipe).__name__ not in ("ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline"):
        return []
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None:
        return []
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=True,
        )
        count = len(tokenizer(text, truncation=False)["input_ids"])
    except Exception as exc:  # noqa: BLE001 (a warning we cannot compute must not fail the image)
        log.debug("could not count the prompt's tokens: %s", exc)
        return []
    if count <= Z_IMAGE_MAX_TOKENS:
        return []
    return [
        f"the prompt is {count} tokens with the model's chat template; the model reads only the first "
        f"{Z_IMAGE_MAX_TOKENS}, so its end was cut"
    ]
