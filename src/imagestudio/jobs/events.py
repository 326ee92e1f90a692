"""The events a job emits, built in one place so a live stream and a late snapshot look the same."""

from __future__ import annotations

from typing import Any

from imagestudio.jobs.model import JobEvent, JobInfo, JobState

STOPPED_BEFORE_RUN = "the server stopped before the job ran"
STOPPED_DURING_JOB = "server stopped during the job"


def queued_event(job_id: str, position: int) -> JobEvent:
    return JobEvent(job_id, "queued", {"position": position})


def started_event(info: JobInfo) -> JobEvent:
    return JobEvent(info.id, "started", {"started_at": info.started_at})


def terminal_event(info: JobInfo) -> JobEvent:
    """The one event that ends a job's stream; it carries the full snapshot in ``info``."""
    elapsed = (
        round(info.finished_at - info.started_at, 3)
        if info.finished_at is not None and info.started_at is not None
        else None
    )
    data: dict[str, Any]
    if info.state is JobState.DONE:
        data = {"images": [image.public() for image in info.images], "elapsed_s": elapsed}
        return JobEvent(info.id, "done", data, info)
    if info.state is JobState.FAILED:
        error = info.error
        data = {
            "message": error.message if error else "failed",
            "type": error.type if error else "server_error",
            "param": error.param if error else None,
        }
        return JobEvent(info.id, "failed", data, info)
    if info.state is JobState.CANCELLED:
        message = info.error.message if info.error else "cancelled"
        return JobEvent(info.id, "cancelled", {"message": message}, info)
    raise ValueError(f"job {info.id} is {info.state.value}, not finished")


def snapshot_events(info: JobInfo) -> list[JobEvent]:
    """What a subscriber arriving now must be told to be up to date with ``info``."""
    if info.state is JobState.QUEUED:
        return [queued_event(info.id, info.queue_position or 1)]
    if info.state is JobState.RUNNING:
        events = [started_event(info)]
        if info.progress is not None:
            events.append(JobEvent(info.id, "step", info.progress.as_dict()))
        return events
    return [terminal_event(info)]
