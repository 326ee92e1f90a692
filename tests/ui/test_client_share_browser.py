"""One browser's jobs from the API and from the studio's page count against one share of the queue
(``server.max_queued_per_client``), checked in headless Chromium against ``imagestudio serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.api.conftest import BLOCKER
from tests.ui.conftest import StudioServer, studio_running
from tests.ui.widgets import fill_text

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def shared_share_server(
    tmp_path_factory: pytest.TempPathFactory, shared_models_dir: Path
) -> Iterator[StudioServer]:
    home = tmp_path_factory.mktemp("share-home")
    with studio_running(home, shared_models_dir, "server:\n  max_queued_per_client: 2\n") as server:
        yield server


def test_the_page_says_when_this_browser_has_its_share_of_the_queue(shared_share_server, open_page) -> None:
    page = open_page(shared_share_server.url)
    with httpx.Client(base_url=shared_share_server.url, timeout=60) as http:
        # The same machine's program fills this address's share through the API.
        blockers = [http.post("/api/jobs", json=BLOCKER).json()["id"] for _ in range(2)]
        try:
            fill_text(page, "gen-prompt", "one more, from the page")
            page.locator("#gen-run").click()
            expect(page.locator("#gen-error .is-error")).to_contain_text(
                "You already have 2 jobs waiting; wait for one to finish."
            )
            # Nothing was queued for the page: only the API's two jobs are there.
            assert len(http.get("/api/jobs").json()["jobs"]) == 2
        finally:
            for job_id in blockers:
                http.delete(f"/api/jobs/{job_id}")
