"""Page logic of the queue and chained work that needs no browser."""

from __future__ import annotations

from imagestudio.ui.chain import picture_of
from imagestudio.ui.generate_page import prompts_of
from imagestudio.ui.session_jobs import SessionJobs


def test_one_prompt_per_line_only_when_asked() -> None:
    text = "a red fox\n\n  a blue whale  \n"
    assert prompts_of(text, per_line=True) == ["a red fox", "a blue whale"]
    assert prompts_of(text, per_line=False) == [text]  # a multi-line prompt stays one prompt
    assert prompts_of("", per_line=True) == [""]  # still one job, refused as an empty prompt
    assert prompts_of(None, per_line=False) == [""]


def test_the_chosen_picture_of_a_gallery() -> None:
    value = [("/out/a.png", "seed 1"), ("/out/b.png", "seed 2")]
    assert picture_of(value, 1) == "/out/b.png"
    assert picture_of(value, 7) == "/out/a.png"  # a stale choice falls back to the first
    assert picture_of(value, None) == "/out/a.png"
    assert picture_of([{"image": {"path": "/out/c.png"}, "caption": None}], 0) == "/out/c.png"
    assert picture_of([], 0) is None
    assert picture_of(None, 0) is None


def test_a_tab_sees_and_cancels_only_its_own_jobs() -> None:
    jobs = SessionJobs()
    jobs.add("tab-a", "generate", "j1")
    jobs.add("tab-a", "edit", "j2")
    jobs.add("tab-b", "generate", "j3")
    assert jobs.of("tab-a") == ["j1", "j2"]
    assert jobs.of("tab-a", "generate") == ["j1"]
    assert jobs.owns("tab-b", "j3") and not jobs.owns("tab-b", "j1")
    jobs.discard("tab-a", "j1")
    jobs.discard("tab-b", "j2")  # not tab b's: nothing happens
    assert jobs.of("tab-a") == ["j2"]
