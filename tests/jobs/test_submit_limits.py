"""The per-client queue share by default: for servers others can reach, not for one person's own machine."""

from __future__ import annotations

import pytest

from imagestudio.config import SHARED_SERVER_CLIENT_SHARE, Settings
from imagestudio.jobs.limits import SubmitLimits


def settings_for(host: str, share: int | None = None) -> Settings:
    return Settings.model_validate({"server": {"host": host, "max_queued_per_client": share}})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_a_loopback_only_server_has_no_share_unless_one_is_set(host: str) -> None:
    assert SubmitLimits.from_settings(settings_for(host)).max_queued_per_client is None
    assert SubmitLimits.from_settings(settings_for(host, 3)).max_queued_per_client == 3


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "studio.example"])
def test_a_server_others_can_reach_shares_its_queue_by_default(host: str) -> None:
    limits = SubmitLimits.from_settings(settings_for(host))
    assert limits.max_queued_per_client == SHARED_SERVER_CLIENT_SHARE
    assert SubmitLimits.from_settings(settings_for(host, 40)).max_queued_per_client == 40
