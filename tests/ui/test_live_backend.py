"""The pages' backend over real services: a followed job's snapshots come from the queue's events.

The services are the server's own (queue, history, studio); only the queue's runner is a plain callable
that steps when told, so each snapshot can be checked at a known moment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imagestudio.engine.pipeline_calls import StepProgress
from imagestudio.jobs.model import JobState
from imagestudio.services import Services
from imagestudio.ui.common import UIContext, follow
from imagestudio.ui.live_backend import LiveBackend
from imagestudio.ui.texts import Texts
from tests.jobs.test_follow import STEPS, WAIT, SteppingRunner, request


def previews(step: StepProgress) -> object:
    return object() if step.step % 2 else None  # a new picture every other step


@pytest.fixture
def runner(settings) -> SteppingRunner:
    return SteppingRunner(settings.outputs_dir)


@pytest.fixture
def services(settings, runner: SteppingRunner) -> Iterator[Services]:
    services = Services.create(settings, handler=runner, preview=previews)
    services.start()
    yield services
    services.close(timeout=WAIT)


def test_a_followed_job_goes_from_its_place_in_the_queue_to_its_pictures(services, runner) -> None:
    backend = LiveBackend(services)
    ahead = backend.submit(request("ahead"))
    job_id = backend.submit(request("followed"))
    assert runner.started.wait(WAIT)
    snapshots = backend.watch(job_id)
    first = next(snapshots)
    # Next in line: no job waits ahead of it (the running one is not waiting).
    assert (first.state, first.ahead, first.prompt, first.kind) == (
        JobState.QUEUED,
        0,
        "followed",
        "generate",
    )
    runner.go.set()
    seen = [first, *snapshots]
    states = [snap.state for snap in seen]
    assert states.index(JobState.QUEUED) < states.index(JobState.RUNNING) < states.index(JobState.DONE)
    # Right after it starts, before a step: the model is not the loaded one, so the page says "loading".
    started = next(snap for snap in seen if snap.state is JobState.RUNNING)
    assert started.progress is None and started.loading and started.ahead is None
    stepped = [snap for snap in seen if snap.progress is not None and not snap.finished]
    assert stepped[-1].progress is not None and stepped[-1].progress.step == STEPS
    assert stepped[-1].preview is not None  # the preview of step 3 is still the newest on step 4
    done = seen[-1]
    assert done.state is JobState.DONE and len(done.results) == 1 and done.results[0].path.exists()
    assert done.run_s is not None and done.elapsed_s == done.run_s
    assert backend.snapshot(ahead).finished
    # Following ended with the job: nothing stays subscribed, and a late look still finds it.
    assert backend.snapshot(job_id).state is JobState.DONE


def test_a_page_that_stops_following_cancels_its_job(services, runner, settings) -> None:
    backend = LiveBackend(services)
    ctx = UIContext(backend=backend, texts=Texts.load())
    job_id = backend.submit(request("nobody watches"))
    updates = follow(ctx, job_id, "en")
    first = next(updates)
    assert first.snapshot.state in (JobState.QUEUED, JobState.RUNNING)
    updates.close()  # the browser went away
    runner.go.set()
    assert services.queue.wait(job_id, WAIT).state is JobState.CANCELLED


def test_following_a_finished_job_gives_its_end_at_once(services, runner) -> None:
    backend = LiveBackend(services)
    runner.go.set()
    job_id = backend.submit(request("already done"))
    services.queue.wait(job_id, WAIT)
    assert [snap.state for snap in backend.watch(job_id)] == [JobState.DONE]
