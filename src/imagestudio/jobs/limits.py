"""Per-request and per-client bounds the queue enforces on every job it accepts (``server.*``).

Checked in :meth:`JobQueue.submit`, the one door every job from the API and the web UI goes through,
so no route can forget them. The client is the address the request came from: tagged by the HTTP layer
for the API (:mod:`imagestudio.jobs.clients`), named by the page for the studio's pages (whose events
run outside that request), so both count against one share. Jobs without one (the CLI's own queue) are
only bounded by the queue's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagestudio.errors import InvalidRequest
from imagestudio.job_requests import EnhanceRequest

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.jobs.model import JobRequest


@dataclass(frozen=True)
class SubmitLimits:
    max_prompt_chars: int | None = None
    max_images: int | None = None
    max_queued_per_client: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SubmitLimits:
        from imagestudio.config import SHARED_SERVER_CLIENT_SHARE, is_loopback

        server = settings.server
        share = server.max_queued_per_client
        if share is None and not is_loopback(server.host):
            # Others can connect: one of them must not fill the queue for everyone. On a loopback-only
            # server every client is this machine's user, whose pages may queue as much as the queue holds.
            share = SHARED_SERVER_CLIENT_SHARE
        return cls(server.max_prompt_chars, server.max_images_per_request, share)

    def check_request(self, request: JobRequest) -> None:
        """Refuse a request over the prompt or image-count limits, naming the field and the limit."""
        if self.max_prompt_chars is not None:
            negative = None if isinstance(request, EnhanceRequest) else request.negative_prompt
            for field, text in (("prompt", request.prompt), ("negative_prompt", negative)):
                if text is not None and len(text) > self.max_prompt_chars:
                    raise InvalidRequest(
                        f"{field} is {len(text)} characters; at most {self.max_prompt_chars} are allowed "
                        "(server.max_prompt_chars)",
                        param=field,
                        code="field_too_long",
                        details={"field": field, "limit": self.max_prompt_chars},
                    )
        count = request.count
        if self.max_images is not None and count > self.max_images:
            raise InvalidRequest(
                f"n = {count}: at most {self.max_images} images per request (server.max_images_per_request)",
                param="n",
                code="field_max",
                details={"field": "n", "limit": self.max_images, "value": count},
            )
