"""*Improve prompt* cancelled from the page: the page's own steps over the live backend and the real queue.

The services are the server's own; only the queue's runner is a slow stand-in for the text encoder (it
steps only when told, and stops when its job is cancelled), so the improvement is still running when the
page's Cancel acts on it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from imagestudio.jobs.model import JobState
from imagestudio.services import Services
from imagestudio.ui.common import UIContext
from imagestudio.ui.enhance_controls import EnhanceControls, cancel_improvement, improve_steps
from imagestudio.ui.live_backend import LiveBackend
from imagestudio.ui.texts import Texts
from tests.jobs.test_follow import WAIT, SteppingRunner

PROMPT = "a quiet harbour at dawn"


@pytest.fixture
def runner(settings) -> SteppingRunner:
    return SteppingRunner(settings.outputs_dir)


@pytest.fixture
def services(settings, runner: SteppingRunner) -> Iterator[Services]:
    services = Services.create(settings, handler=runner)
    services.start()
    yield services
    services.close(timeout=WAIT)


def controls() -> EnhanceControls:
    # The page's components are only named in the updates: plain placeholders stand in for them here.
    return EnhanceControls(
        improve="improve", undo="undo", state=None, status="status", jobs_page="gen-improve"
    )


def is_skip(update: Any) -> bool:
    return isinstance(update, dict) and update.get("__type__") == "update" and set(update) == {"__type__"}


def visible(update: Any) -> bool | None:
    return getattr(update, "visible", None)


def test_cancel_stops_the_running_improvement_and_puts_the_page_back(services, runner) -> None:
    ctx = UIContext(backend=LiveBackend(services), texts=Texts.load())
    improving = controls()
    steps = improve_steps(ctx, improving, "tab-1", PROMPT, "tiny-z-image", None, lambda: (), "en")

    # While the job is in the queue: the "improving" line, and Cancel in the Improve button's place.
    prompt, state, undo, status, improve, cancel = next(steps)
    assert is_skip(prompt) and is_skip(state) and is_skip(undo)
    assert "Improving the prompt" in status
    assert (visible(improve), visible(cancel)) == (False, True)
    (job_id,) = ctx.active.of("tab-1", "gen-improve")
    assert runner.started.wait(WAIT)

    # The page waits for the job on its own thread (as Gradio runs it); another tab's Cancel does nothing.
    rest: list[tuple[Any, ...]] = []
    waiting = threading.Thread(target=lambda: rest.extend(steps))
    waiting.start()
    cancel_improvement(ctx, improving, "tab-2")
    assert services.queue.get(job_id).state is JobState.RUNNING
    cancel_improvement(ctx, improving, "tab-1")
    waiting.join(WAIT)
    assert not waiting.is_alive()

    assert services.queue.wait(job_id, WAIT).state is JobState.CANCELLED
    # One last update: the prompt as it was, a short "cancelled" line, Improve back and Cancel gone.
    ((prompt, state, undo, status, improve, cancel),) = rest
    assert is_skip(prompt) and is_skip(state) and is_skip(undo)
    assert "Improving cancelled" in status and "is-error" not in status
    assert (visible(improve), visible(cancel)) == (True, False)
    assert ctx.active.of("tab-1") == []


def test_a_page_that_goes_away_before_following_cancels_its_improvement(services, runner) -> None:
    ctx = UIContext(backend=LiveBackend(services), texts=Texts.load())
    steps = improve_steps(ctx, controls(), "tab-1", PROMPT, "tiny-z-image", None, lambda: (), "en")
    next(steps)
    (job_id,) = ctx.active.of("tab-1")
    steps.close()  # the browser went away
    assert services.queue.wait(job_id, WAIT).state is JobState.CANCELLED
    assert ctx.active.of("tab-1") == []


def test_a_refused_improvement_queues_nothing_and_keeps_improve(services) -> None:
    ctx = UIContext(backend=LiveBackend(services), texts=Texts.load())
    updates = list(improve_steps(ctx, controls(), "tab-1", "", "tiny-z-image", None, lambda: (), "en"))
    ((prompt, _state, _undo, status, improve, cancel),) = updates
    assert is_skip(prompt) and "Write a prompt first" in status
    assert (visible(improve), visible(cancel)) == (True, False)
    assert ctx.active.of("tab-1") == []
