"""The ``server`` section and the history path: defaults, the example file, bounds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagestudio.config import ServerSettings, load_settings
from tests.conftest import REPO_ROOT
from tests.helpers import config_refusal


def test_server_defaults_are_safe(app_home: Path) -> None:
    settings = load_settings()
    server = settings.server
    assert (server.host, server.port, server.api_key, server.cors_origins) == ("127.0.0.1", 7860, None, [])
    assert settings.history_db == app_home / "history.sqlite3"


def test_example_file_states_the_defaults(app_home: Path) -> None:
    settings = load_settings(REPO_ROOT / "config.example.yaml")
    assert settings.server == ServerSettings()
    assert settings.history_db == app_home / "history.sqlite3"


def test_relative_history_path_is_relative_to_the_config_file(app_home: Path) -> None:
    config = app_home / "sub" / "config.yaml"
    config.parent.mkdir()
    config.write_text("storage: {history_db: db/h.sqlite3}\n", encoding="utf-8")
    assert load_settings(config).history_db == app_home / "sub" / "db" / "h.sqlite3"


@pytest.mark.parametrize(
    ("yaml", "fragment"),
    [
        ("server: {port: 0}", "server.port = 0"),
        ("server: {max_queue: 0}", "server.max_queue = 0"),
        ("server: {max_upload_mb: -1}", "server.max_upload_mb"),
        ("server: {request_timeout_s: 0}", "server.request_timeout_s"),
        ("server: {api_key: ''}", "server.api_key"),
        ("server: {hots: 0.0.0.0}", "unknown key 'server.hots'"),
    ],
)
def test_bad_server_values_are_refused(app_home: Path, yaml: str, fragment: str) -> None:
    assert re.search(fragment.replace(".", r"\."), str(config_refusal(app_home, yaml + "\n")))
