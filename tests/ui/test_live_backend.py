"""The pages' backend over real services: a followed job's snapshots come from the queue's events.

The services are the server's own (queue, history, studio); only the queue's runner is a plain callable
that steps when told, so each snapshot can be checked at a known moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from imagestudio.engine.pipeline_calls import StepProgress
from imagestudio.errors import QueueFull
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


def test_a_page_that_stops_following_leaves_its_job_running(services, runner, settings) -> None:
    """Jobs live on the server, as in ComfyUI and InvokeAI: a closed or reloaded tab loses nothing."""
    backend = LiveBackend(services)
    ctx = UIContext(backend=backend, texts=Texts.load())
    job_id = backend.submit(request("nobody watches"))
    updates = follow(ctx, job_id, "en")
    first = next(updates)
    assert first.snapshot.state in (JobState.QUEUED, JobState.RUNNING)
    updates.close()  # the browser went away
    runner.go.set()
    assert services.queue.wait(job_id, WAIT).state is JobState.DONE


def test_following_a_finished_job_gives_its_end_at_once(services, runner) -> None:
    backend = LiveBackend(services)
    runner.go.set()
    job_id = backend.submit(request("already done"))
    services.queue.wait(job_id, WAIT)
    assert [snap.state for snap in backend.watch(job_id)] == [JobState.DONE]


def page_request(host: str, port: int = 50000) -> Any:
    """Gradio's request for a page event that came in from ``host`` (as Gradio builds it from the
    request that joined its queue), with that request's ASGI scope."""
    import gradio as gr
    from starlette.requests import Request

    scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "headers": [],
             "query_string": b"", "client": (host, port)}  # fmt: skip
    return gr.Request(Request(scope), session_hash=f"tab-of-{host}")


def test_a_page_client_at_its_share_is_refused_and_another_is_accepted(settings, runner) -> None:
    from imagestudio.api.clients import client_address
    from imagestudio.jobs.clients import serving
    from imagestudio.ui.common import client_of, submit_all

    settings.server.max_queued_per_client = 2
    services = Services.create(settings, handler=runner)
    services.start()
    try:
        ctx = UIContext(backend=LiveBackend(services), texts=Texts.load())
        browser, other = page_request("192.0.2.10"), page_request("192.0.2.20")
        # The page counts by the address the HTTP API tags its requests with, for the same connection.
        assert client_of(browser) == client_address(browser.request.scope) == "192.0.2.10"
        client = client_of(browser)
        first = ctx.backend.submit(request("first"), client)
        # The same address through the HTTP API: its jobs and the page's count against one share.
        with serving(client_address(browser.request.scope)):
            second = services.queue.submit(request("second, from the API")).id
        with pytest.raises(QueueFull) as refused:
            submit_all(ctx, [request("one too many")], client)
        assert refused.value.code == "client_queue_full"
        # What the page shows next to its run button, in the reader's language.
        assert ctx.texts.error(refused.value, "en") == ctx.t("err.client_queue_full", "en", max=2)
        assert ctx.texts.error(refused.value, "ru") == ctx.t("err.client_queue_full", "ru", max=2)

        # Another browser is not held to the first one's share: all of its lines are queued.
        others = submit_all(ctx, [request("line 1"), request("line 2")], client_of(other))
        assert len(others) == 2
        # A submission over its share is all or none: the line that fitted is cancelled again, so
        # nothing runs that the page does not follow.
        services.queue.cancel(others[1])
        with pytest.raises(QueueFull):
            submit_all(ctx, [request("fits"), request("does not")], client_of(other))
        queued = [job for job in services.queue.jobs() if job.prompt == "fits"]
        assert [job.state for job in queued] == [JobState.CANCELLED]

        runner.go.set()
        for job_id in (first, second, others[0]):
            assert services.queue.wait(job_id, WAIT).state is JobState.DONE
        # Its jobs done, the first browser may queue again.
        assert (
            services.queue.wait(submit_all(ctx, [request("again")], client)[0], WAIT).state is JobState.DONE
        )
    finally:
        services.close(timeout=WAIT)
