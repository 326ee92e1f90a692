"""Improve prompt on the tiny models: chat template, token and time limits, cancel, safe output.

The tiny text encoders write random tokens, so these tests check the plumbing (what goes in, how
generation is bounded, what comes out is always a usable one-paragraph prompt), not the writing.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from imagestudio.engine.enhance import stop_criteria
from imagestudio.engine.enhance_text import (
    clean_output,
    detect_language,
    render_chat,
    system_prompt,
    usable,
)
from imagestudio.errors import InvalidRequest, JobCancelled
from imagestudio.job_requests import MAX_PROMPT_CHARS, TINY_ENHANCE_TOKENS, EnhanceRequest, GenerateRequest
from imagestudio.storage.inputs import InputLimits, read_input_image
from imagestudio.storage.metadata import read_metadata


def rewrite(**fields: object) -> EnhanceRequest:
    return EnhanceRequest.build(**{"model": "tiny-z-image", "prompt": "кот в шляпе", "seed": 5, **fields})


def picture(settings, color: str = "red") -> object:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), color).save(buffer, format="PNG")
    return read_input_image(buffer.getvalue(), InputLimits.from_settings(settings), name=f"{color}.png")


# ------------------------------------------------------------------------- template and cleanup


def test_chat_template_has_the_system_prompt_and_thinking_off(shared_models_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shared_models_dir / "tiny-z-image" / "tokenizer")
    messages = [
        {"role": "system", "content": system_prompt("text-to-image", "ru")},
        {"role": "user", "content": "кот"},
    ]
    text = render_chat(tokenizer, messages)
    assert text.startswith("<|im_start|>system\nТы превращаешь")
    assert "<|im_start|>user\nкот<|im_end|>" in text
    # Qwen3 without thinking: the assistant turn opens with an empty think block.
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # A tokenizer without a template of its own gets the same ChatML.
    tokenizer.chat_template = None
    assert render_chat(tokenizer, messages) == text


def test_system_prompts_by_task_and_language() -> None:
    assert "Picture 1" in system_prompt("edit", "en") and "Picture 1" in system_prompt("edit", "ru")
    assert "по-русски" in system_prompt("text-to-image", "ru")
    assert "Z-Image-Turbo" in system_prompt("text-to-image", "en")
    assert detect_language("рыжий кот в шляпе, watercolor") == "ru"
    assert detect_language("a red fox in the snow, акварель") == "en"
    assert detect_language("1234") == "en"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<think>\nplan it\n</think>\n\nA red fox in snow.", "A red fox in snow."),
        ('Here is the improved prompt:\n\n"A red fox\nin the snow."', "A red fox in the snow."),
        ("Improved prompt: A red fox", "A red fox"),
        ("Вот улучшенный промпт: «Рыжий кот»", "Рыжий кот"),
        ("A fox<|im_end|><|endoftext|>", "A fox"),
        ("**A fox** in \ufffd\x07 snow", "A fox** in snow"),
        ("<think>never closed, the budget ran out", ""),
    ],
)
def test_clean_output(raw: str, expected: str) -> None:
    assert clean_output(raw, MAX_PROMPT_CHARS) == expected


def test_clean_output_is_bounded_at_a_word() -> None:
    text = clean_output("word " * 2000, 100)
    assert len(text) <= 100 and text.endswith("word")
    assert not usable(clean_output("\ufffd\ufffd <|im_end|> ...", 100))


def test_stop_criteria_time_limit_and_cancel() -> None:
    import time

    import torch

    ids = torch.zeros((1, 3), dtype=torch.long)
    running = stop_criteria(time.perf_counter() + 60, threading.Event())
    assert not bool(running(ids, None)[0]) and running.reason is None
    late = stop_criteria(time.perf_counter() - 1, None)
    assert bool(late(ids, None)[0]) and late.reason == "time_limit"
    cancel = threading.Event()
    cancel.set()
    cancelled = stop_criteria(time.perf_counter() + 60, cancel)
    assert bool(cancelled(ids, None)[0]) and cancelled.reason == "cancelled"


# ------------------------------------------------------------------------- requests


def test_request_defaults_and_refusals(settings) -> None:
    resolved = rewrite(seed=None).resolved(settings)
    assert resolved.seed is not None and resolved.max_new_tokens == TINY_ENHANCE_TOKENS
    with pytest.raises(InvalidRequest) as empty:
        rewrite(prompt="  ").resolved(settings)
    assert empty.value.code == "prompt_empty"
    with pytest.raises(InvalidRequest) as images:
        rewrite(images=(picture(settings),)).resolved(settings)
    assert (images.value.param, images.value.code) == ("images", "enhance_images_unused")
    with pytest.raises(InvalidRequest) as budget:
        rewrite(max_new_tokens=5000)
    assert budget.value.param == "max_new_tokens"


# ------------------------------------------------------------------------- on the tiny models


def test_rewrite_is_bounded_seeded_and_safe(studio, settings) -> None:
    first = studio.enhance(rewrite(max_new_tokens=16))
    assert first.tokens <= 16 and first.stopped in ("finished", "max_tokens")
    assert first.original_prompt == "кот в шляпе" and first.language == "ru"
    assert first.source == "loaded"  # nothing was resident
    assert usable(first.prompt) and "\n" not in first.prompt and "<|" not in first.prompt
    again = studio.enhance(rewrite(max_new_tokens=16))
    assert again.prompt == first.prompt  # same seed, same rewrite


def test_resident_text_encoder_is_borrowed_and_writes_the_same(studio, tmp_path: Path) -> None:
    loaded = studio.enhance(rewrite(max_new_tokens=16))
    studio.generate(
        GenerateRequest.build(model="tiny-z-image", prompt="x", width=64, height=64, steps=2, seed=1),
        out_dir=tmp_path,
    )
    borrowed = studio.enhance(rewrite(max_new_tokens=16))
    assert borrowed.source == "resident"
    # The borrowed Qwen3Model with the tied head is the same causal LM as the one loaded alone.
    assert borrowed.prompt == loaded.prompt
    assert studio.manager.loaded_id == "tiny-z-image"  # and the pipeline is still there


def test_time_limit_stops_generation_and_falls_back_to_the_original(studio) -> None:
    result = studio.enhance(rewrite(max_new_tokens=1024, time_limit_s=0.001))
    assert result.stopped == "time_limit"
    assert result.tokens <= 2
    # One random token is no prompt: the user's own words come back, with a warning.
    assert (result.prompt, result.warning) == ("кот в шляпе", "enhance_unusable")


class CancelledAfter(threading.Event):
    """A cancel flag that turns on after it was read ``reads`` times: mid-generation, on every machine
    (a timer races a tiny model, which can finish a rewrite in a fraction of a second)."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.reads_left = reads
        self.reads = 0

    def is_set(self) -> bool:
        self.reads += 1
        self.reads_left -= 1
        return self.reads_left < 0 or super().is_set()


def test_cancel_stops_generation(studio) -> None:
    # One read before the model runs, then one per generated token: the third token is never made.
    cancel = CancelledAfter(reads=3)
    with pytest.raises(JobCancelled):
        studio.enhance(rewrite(max_new_tokens=1024, time_limit_s=600), cancel=cancel)
    assert cancel.reads == 4, "generation went on after the flag was set"


def test_edit_model_rewrites_while_looking_at_the_pictures(studio, settings) -> None:
    request = rewrite(
        model="tiny-qwen-image-edit",
        prompt="Picture 1 wears the hat from Picture 2",
        images=(picture(settings, "red"), picture(settings, "blue")),
        max_new_tokens=16,
    )
    result = studio.enhance(request)
    assert result.model == "tiny-qwen-image-edit" and result.language == "en"
    assert result.tokens <= 16 and result.prompt


def test_improved_prompt_is_recorded_beside_the_original(studio, tmp_path: Path) -> None:
    request = GenerateRequest.build(
        model="tiny-z-image",
        prompt="a detailed rewrite",
        original_prompt="кот",
        width=64,
        height=64,
        steps=2,
        seed=3,
    )
    meta = read_metadata(studio.generate(request, out_dir=tmp_path).images[0].path)
    assert (meta["prompt"], meta["original_prompt"]) == ("a detailed rewrite", "кот")
    plain = studio.generate(request.model_copy(update={"original_prompt": None}), out_dir=tmp_path)
    assert "original_prompt" not in read_metadata(plain.images[0].path)
