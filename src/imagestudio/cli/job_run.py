"""The CLI's images go through the server's own job path: an in-process job queue and the history recorder.

So an image made with ``imagestudio generate`` or ``edit`` appears in History next to the ones made in the
browser or through the API, with the same rows and kept inputs. The queue runs here, in this process, on
this machine's accelerator (whatever ``cluster.backend`` says: a command line is one person's one job).

Images written outside the outputs folder (``--out`` elsewhere) are not recorded: History only lists and
serves files inside the outputs folder. A history file that cannot be opened is a warning, not a failed
command: the image is what the user asked for.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from imagestudio.errors import ImageStudioError, JobCancelled, UserError

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.engine.pipeline_calls import ProgressCallback
    from imagestudio.history.store import HistoryStore
    from imagestudio.jobs.model import JobEvent, JobRequest
    from imagestudio.studio import StudioResult

log = logging.getLogger(__name__)

#: How long Ctrl+C waits for the running step to end before the command gives up on a clean record.
CANCEL_WAIT_S = 30.0


def run_job(settings: Settings, request: JobRequest, out_dir: Path) -> StudioResult:
    """Run ``request`` as one job, drawing a progress bar on a terminal; returns the studio's result.

    The studio's own exception is raised again here (a user error stays a one-line error, exit 2), and
    Ctrl+C cancels the job within a step so its history row ends as cancelled.
    """
    from imagestudio.history.recorder import HistoryRecorder
    from imagestudio.jobs.dispatch import StudioDispatcher
    from imagestudio.jobs.local_queue import JobQueue
    from imagestudio.jobs.model import JobState
    from imagestudio.studio import Studio

    dispatch = StudioDispatcher(Studio(settings), out_dir)
    # What the studio returned or raised, kept so the command prints and fails exactly as the studio says
    # (the queue turns exceptions into JSON-ready job errors for its other clients).
    outcome: list[StudioResult | BaseException] = []

    def handler(job: JobRequest, on_step: ProgressCallback, cancel: threading.Event) -> StudioResult:
        try:
            result = dispatch(job, on_step, cancel)
        except BaseException as exc:
            outcome.append(exc)
            raise
        outcome.append(result)
        return result

    # The queue logs each failed job for a server's log; here the command prints that error itself.
    if not log.isEnabledFor(logging.INFO):
        logging.getLogger("imagestudio.jobs.failures").setLevel(logging.ERROR)
    history = _open_history(settings, out_dir)
    queue = JobQueue(handler, max_queue=1, recorder=HistoryRecorder(history) if history else None)
    queue.start()
    try:
        info = queue.submit(request)
        try:
            with _progress_bar() as on_event:
                unsubscribe = queue.subscribe(info.id, on_event) if on_event else (lambda: None)
                try:
                    final = queue.wait(info.id)
                finally:
                    unsubscribe()
        except KeyboardInterrupt:
            queue.cancel(info.id)
            queue.wait(info.id, CANCEL_WAIT_S)
            raise
    finally:
        queue.stop()
        if history is not None:
            history.close()
    if final.state is JobState.DONE and outcome and not isinstance(outcome[0], BaseException):
        return outcome[0]
    if outcome and isinstance(outcome[0], BaseException):
        raise outcome[0]
    # The studio succeeded but the job did not: its result could not be recorded (the queue removed the
    # files, so nothing half-recorded remains).
    error = final.error
    message = error.message if error is not None else f"the job ended {final.state.value}"
    if final.state is JobState.CANCELLED:
        raise JobCancelled(message)
    if error is not None and error.http_status < 500:
        raise UserError(message, code=error.code, details=error.details)
    raise ImageStudioError(message, code=error.code if error else None)


def _open_history(settings: Settings, out_dir: Path) -> HistoryStore | None:
    """The history to record into, when the images land inside the outputs folder."""
    from imagestudio.history.store import HistoryStore

    if not out_dir.resolve().is_relative_to(settings.outputs_dir.resolve()):
        log.info("%s is outside the outputs folder: these images are not added to History", out_dir)
        return None
    try:
        return HistoryStore(settings.history_db, settings.outputs_dir, owner=False)
    except ImageStudioError as exc:
        log.warning("History is not updated for this image: %s", exc)
        return None


@contextmanager
def _progress_bar() -> Iterator[Callable[[JobEvent], None] | None]:
    """A sink for the job's events drawing a bar on stderr; None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("loading", total=1.0, detail="")

        def on_event(event: JobEvent) -> None:
            # Called by the queue with its lock held: rich's update only stores the numbers.
            if event.type == "step":
                step = event.data
                progress.update(
                    task,
                    completed=step["fraction"],
                    description="generating",
                    detail=f"image {step['image']}/{step['images']} · step {step['step']}/{step['steps']}",
                )

        yield on_event
