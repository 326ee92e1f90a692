"""Which jobs each browser (its owner cookie, see ui/owner.py) has queued, for its queue panel and Cancel
buttons.

A tab can have several jobs waiting at once (Generate stays enabled while a job runs; "one prompt per
line" queues one job per line), so this keeps every job id a tab submitted, per page, until the job
is seen finished. Ids are unguessable and only ever listed to the tab that submitted them.
"""

from __future__ import annotations

import threading


class SessionJobs:
    """Job ids per (session, page), in submission order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], list[str]] = {}
        #: Jobs whose Cancel was pressed and which have not ended yet (their bar says "Cancelling…").
        self._cancelling: set[str] = set()

    def mark_cancelling(self, job_id: str) -> None:
        with self._lock:
            self._cancelling.add(job_id)

    def cancelling(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancelling

    def add(self, session: str, page: str, job_id: str) -> None:
        with self._lock:
            self._jobs.setdefault((session, page), []).append(job_id)

    def of(self, session: str, page: str | None = None) -> list[str]:
        """The session's job ids on ``page`` (every page for None), oldest first."""
        with self._lock:
            return [
                job_id
                for (owner, on_page), ids in self._jobs.items()
                if owner == session and (page is None or on_page == page)
                for job_id in ids
            ]

    def owns(self, session: str, job_id: str) -> bool:
        return job_id in self.of(session)

    def discard(self, session: str, job_id: str) -> None:
        with self._lock:
            self._cancelling.discard(job_id)
            for (owner, page), ids in list(self._jobs.items()):
                if owner == session and job_id in ids:
                    ids.remove(job_id)
                    if not ids:
                        del self._jobs[(owner, page)]
