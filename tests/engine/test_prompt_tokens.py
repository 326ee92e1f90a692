"""A prompt longer than Z-Image reads is cut by the pipeline: the cut is recorded, never silent."""

from __future__ import annotations

from pathlib import Path

from imagestudio.engine.prompt_tokens import Z_IMAGE_MAX_TOKENS
from imagestudio.job_requests import GenerateRequest
from imagestudio.storage.metadata import read_metadata


def generate(studio, settings, prompt: str, out: Path):
    request = GenerateRequest.build(model="tiny-z-image", prompt=prompt, width=32, height=32, steps=1, seed=1)
    return studio.generate(request.resolved(settings), out)


def test_a_prompt_over_the_token_limit_is_cut_with_a_warning(studio, settings, tmp_path: Path) -> None:
    long_prompt = " ".join(["a red fox in the snow"] * 150)  # ~750 words, far over 512 tokens
    result = generate(studio, settings, long_prompt, tmp_path)
    [warning] = result.extra["warnings"]
    assert f"only the first {Z_IMAGE_MAX_TOKENS}" in warning and "cut" in warning
    assert read_metadata(result.images[0].path)["warnings"] == [warning]

    short = generate(studio, settings, "a red fox", tmp_path)
    assert "warnings" not in short.extra and "warnings" not in read_metadata(short.images[0].path)
