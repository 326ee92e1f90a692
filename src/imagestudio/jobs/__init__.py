"""Jobs: typed requests queued for one worker thread, with states, progress events and cancellation.

``JobQueue`` (queue.py) is the service; ``StudioRunner`` (runner.py) runs requests on a Studio;
model.py and events.py are the plain data every consumer sees; aio.py bridges to asyncio.
"""

from imagestudio.jobs.model import JobError, JobEvent, JobInfo, JobProgress, JobState, ResultImage
from imagestudio.jobs.queue import JobQueue, QueueStats

__all__ = [
    "JobError",
    "JobEvent",
    "JobInfo",
    "JobProgress",
    "JobQueue",
    "JobState",
    "QueueStats",
    "ResultImage",
]
