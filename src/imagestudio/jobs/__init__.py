"""Jobs: typed requests queued for workers, with states, progress events, cancellation and records.

book.py is the bookkeeping every queue shares; ``JobQueue`` (local_queue.py) runs it on one worker thread in
this process; ``StudioDispatcher`` (dispatch.py) hands requests to a Studio; recorder.py is what the
history hears; model.py and events.py are the plain data every consumer sees; aio.py bridges to asyncio.
"""

from imagestudio.jobs.local_queue import JobQueue
from imagestudio.jobs.model import JobError, JobEvent, JobInfo, JobProgress, JobState, QueueStats, SavedImage

__all__ = [
    "JobError",
    "JobEvent",
    "JobInfo",
    "JobProgress",
    "JobQueue",
    "JobState",
    "QueueStats",
    "SavedImage",
]
