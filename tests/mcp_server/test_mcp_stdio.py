"""``imagestudio mcp`` as a desktop assistant runs it: a subprocess spoken to over stdin/stdout by the
official MCP SDK's stdio client, with the tiny models. Its jobs land in the History the other commands use."""

from __future__ import annotations

import base64
import io
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from PIL import Image

from tests.conftest import PYTHON, cli_env
from tests.helpers import cancel_a_long_mcp_call

pytestmark = pytest.mark.slow

TINY = {"model": "tiny-z-image", "width": 64, "height": 64, "steps": 2}
EDIT = {"model": "tiny-qwen-image-edit", "width": 64, "height": 64, "steps": 2}


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def run_session(config_file: Path, body: Any) -> Any:
    params = StdioServerParameters(
        command=PYTHON,
        args=["-m", "imagestudio", "mcp", "--config", str(config_file)],
        env=cli_env(IMAGESTUDIO_HOME=str(config_file.parent)),
    )

    async def main() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            with anyio.fail_after(60):
                await client.initialize()
            return await body(client)

    return anyio.run(main)


def test_an_assistant_generates_edits_and_is_refused_over_stdio(config_file: Path, tmp_path: Path) -> None:
    picture = tmp_path / "sofa.png"
    Image.new("RGB", (40, 30), "green").save(picture)
    progress: list[tuple[float, float | None]] = []

    async def body(client: ClientSession) -> dict[str, Any]:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total))

        out: dict[str, Any] = {"tools": await client.list_tools()}
        out["made"] = await client.call_tool(
            "generate_image", {"prompt": "кот в шляпе", "seed": 5, **TINY}, progress_callback=on_progress
        )
        made_id = out["made"].structured_content["images"][0]["id"]
        out["by_path"] = await client.call_tool(
            "edit_image", {"prompt": "Picture 1 on Picture 2", "images": [made_id, str(picture)], **EDIT}
        )
        out["bad_size"] = await client.call_tool("generate_image", {"prompt": "x", **TINY, "width": 70})
        out["missing"] = await client.call_tool(
            "generate_image", {"prompt": "x", "model": "z-image-turbo", "width": 512, "height": 512}
        )
        out["four"] = await client.call_tool("edit_image", {"prompt": "x", "images": [made_id] * 4, **EDIT})
        out["found"] = await client.call_tool("search_history", {"words": "шляпе"})
        out["got"] = await client.call_tool("get_image", {"id": made_id})
        out["resources"] = await client.list_resources()
        out["read"] = await client.read_resource(f"imagestudio://images/{made_id}")
        return out

    out = run_session(config_file, body)
    assert {tool.name for tool in out["tools"].tools} >= {"generate_image", "edit_image", "get_image"}

    made = out["made"]
    assert not made.is_error, text_of(made)
    [block] = [block for block in made.content if block.type == "image"]
    assert Image.open(io.BytesIO(base64.b64decode(block.data))).size == (64, 64)
    assert not any(block.type == "resource_link" for block in made.content)  # no URL on stdio
    facts = made.structured_content["images"][0]
    assert Path(facts["path"]).is_file() and f"file {facts['path']}" in text_of(made)
    assert progress and progress[-1] == (2.0, 2.0)

    assert not out["by_path"].is_error, text_of(out["by_path"])
    for name, says in (
        ("bad_size", "width = 70"),
        ("missing", "models download z-image-turbo"),
        ("four", "images"),
    ):
        assert out[name].is_error and says in text_of(out[name]) and "\n" not in text_of(out[name])
    assert facts["id"] in text_of(out["found"])
    assert not out["got"].is_error and "кот в шляпе" in text_of(out["got"])
    # Stored images are resources too: listed (newest first) and readable as the full PNG.
    assert f"imagestudio://images/{facts['id']}" in {str(item.uri) for item in out["resources"].resources}
    assert base64.b64decode(out["read"].contents[0].blob) == Path(facts["path"]).read_bytes()

    # The rows are in the History the server and the other commands share, marked as coming over MCP.
    from imagestudio.config import load_settings
    from imagestudio.history.store import HistoryStore

    settings = load_settings(config_file)
    history = HistoryStore(settings.history_db, settings.outputs_dir, owner=False)
    try:
        record = history.get_image(facts["id"])
        edited = history.get_image(out["by_path"].structured_content["images"][0]["id"])
        job = history.get_job(made.structured_content["job_id"])
    finally:
        history.close()
    assert record.metadata["client"] == {"via": "mcp"} and record.seed == 5
    assert [item["name"] for item in edited.metadata["input_images"]][1] == "sofa.png"
    assert job.state.value == "done" and job.request["client"] == {"via": "mcp"}


def test_cancelling_a_call_over_stdio_cancels_its_job(config_file: Path) -> None:
    async def body(client: ClientSession) -> Any:
        await cancel_a_long_mcp_call(client)
        # The server is still serving after the cancelled call; its History answers the next one.
        with anyio.fail_after(120):
            while True:
                found = await client.call_tool("search_history", {"words": "long"})
                jobs = await _jobs(config_file)
                if jobs and jobs[0].state.finished:
                    return found, jobs[0]
                await anyio.sleep(0.5)

    found, job = run_session(config_file, body)
    assert not found.is_error
    assert job.state.value == "cancelled" and job.request["client"] == {"via": "mcp"}


async def _jobs(config_file: Path) -> list[Any]:
    from imagestudio.config import load_settings
    from imagestudio.history.store import HistoryStore

    def read() -> list[Any]:
        settings = load_settings(config_file)
        if not settings.history_db.is_file():
            return []
        with sqlite3.connect(settings.history_db) as db:
            ids = [row[0] for row in db.execute("SELECT id FROM jobs WHERE prompt = 'long'")]
        history = HistoryStore(settings.history_db, settings.outputs_dir, owner=False)
        try:
            return [history.get_job(job_id) for job_id in ids]
        finally:
            history.close()

    return await anyio.to_thread.run_sync(read)


def test_an_assistant_picks_a_weight_variant_and_an_unknown_one_is_one_line(config_file: Path) -> None:
    """``weights`` reaches the job: the tiny model's Q4_0 GGUF transformer runs and is recorded."""

    async def body(client: ClientSession) -> dict[str, Any]:
        return {
            "made": await client.call_tool(
                "generate_image", {"prompt": "a fox", "seed": 3, "weights": "gguf-q4_0", **TINY}
            ),
            "unknown": await client.call_tool(
                "generate_image", {"prompt": "a fox", "weights": "gguf-q9_9", **TINY}
            ),
        }

    out = run_session(config_file, body)
    assert not out["made"].is_error, text_of(out["made"])
    from imagestudio.config import load_settings
    from imagestudio.history.store import HistoryStore

    settings = load_settings(config_file)
    history = HistoryStore(settings.history_db, settings.outputs_dir, owner=False)
    try:
        record = history.get_image(out["made"].structured_content["images"][0]["id"])
    finally:
        history.close()
    assert record.metadata["weights"] == "gguf-q4_0"
    unknown = text_of(out["unknown"])
    assert out["unknown"].is_error and "gguf-q9_9" in unknown and "gguf-q4_0" in unknown
    assert "\n" not in unknown
