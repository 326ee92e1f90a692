"""Every error body a client gets is one line of bounded length, whatever raised it (as on the CLI)."""

from __future__ import annotations

import json

import pytest

from imagestudio.api.a1111.shape import a1111_error
from imagestudio.api.errors import error_json
from imagestudio.quoting import MESSAGE_CHARS

LONG = "a value " * 400 + "\nand a second line"


def test_openai_shaped_errors_are_one_bounded_line() -> None:
    body = json.loads(error_json(400, LONG).body)
    message = body["error"]["message"]
    assert "\n" not in message
    assert len(message) < MESSAGE_CHARS + 60
    assert message.endswith(f"(message cut, {len(LONG)} characters)")


def test_a1111_shaped_errors_are_one_bounded_line() -> None:
    body = json.loads(a1111_error(422, LONG, "InvalidRequest").body)
    assert body["detail"] == body["errors"]
    assert "\n" not in body["detail"]
    assert len(body["detail"]) < MESSAGE_CHARS + 60


@pytest.mark.parametrize("message", ["one short line", "x" * MESSAGE_CHARS])
def test_short_messages_pass_unchanged(message: str) -> None:
    assert json.loads(error_json(404, message).body)["error"]["message"] == message
