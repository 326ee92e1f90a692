"""``/mcp`` on the web server, driven by the official MCP SDK's Streamable HTTP client.

A live uvicorn server with the tiny models, assembled by the one function ``imagestudio serve`` uses
(``imagestudio.server.build_app``); every call is a job of the server's one queue and lands in History.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from tests.api.conftest import LiveServer, png_bytes
from tests.helpers import cancel_a_long_mcp_call, wait_until

pytestmark = pytest.mark.slow

TINY = {"model": "tiny-z-image", "width": 64, "height": 64, "steps": 2}


@pytest.fixture
def mcp_serve(serve) -> Any:
    """The API tests' live server: ``imagestudio.server.build_app`` routes ``/mcp`` (pages left out)."""
    return serve


@asynccontextmanager
async def session(live: LiveServer, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(300)) as http,
        streamable_http_client(f"{live.url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as client,
    ):
        await client.initialize()
        yield client


def run(live: LiveServer, body: Callable[[ClientSession], Any], **kwargs: Any) -> Any:
    async def main() -> Any:
        async with session(live, **kwargs) as client:
            return await body(client)

    return anyio.run(main)


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def decoded_images(result: Any) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(block.data)))
        for block in result.content
        if block.type == "image" and block.mime_type == "image/png"
    ]


def test_tools_generate_with_progress_and_land_in_history(mcp_serve) -> None:
    live = mcp_serve()
    progress: list[tuple[float, float | None, str | None]] = []

    async def body(client: ClientSession) -> Any:
        tools = await client.list_tools()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total, message))

        result = await client.call_tool(
            "generate_image", {"prompt": "a red fox", "seed": 7, **TINY}, progress_callback=on_progress
        )
        link = next(block for block in result.content if block.type == "resource_link")
        resource = await client.read_resource(link.uri)
        return tools, result, link, resource

    tools, result, link, resource = run(live, body)
    names = {tool.name for tool in tools.tools}
    assert names == {
        "generate_image",
        "edit_image",
        "improve_prompt",
        "list_models",
        "search_history",
        "get_image",
    }
    schema = next(tool for tool in tools.tools if tool.name == "generate_image").input_schema
    assert schema["properties"]["prompt"]["maxLength"] == 4000 and schema["required"] == ["prompt"]

    assert not result.is_error, text_of(result)
    [picture] = decoded_images(result)
    assert picture.size == (64, 64)
    facts = result.structured_content["images"][0]
    assert "seed 7" in text_of(result) and facts["seed"] == 7 and link.uri == facts["url"]
    # Progress in steps, increasing, ending at the last step of the one image.
    values = [value for value, _, _ in progress]
    assert values == sorted(set(values)) and progress[-1][:2] == (2.0, 2.0)

    # The resource link serves the stored PNG, by resources/read and over plain HTTP alike.
    stored = base64.b64decode(resource.contents[0].blob)
    assert httpx.get(link.uri).content == stored
    record = live.services.history.get_image(facts["id"])
    assert record is not None and record.seed == 7 and record.metadata["client"] == {"via": "mcp"}
    job = live.services.history.get_job(result.structured_content["job_id"])
    assert job is not None and job.state.value == "done" and job.request["client"] == {"via": "mcp"}


def test_edit_by_history_id_and_by_data_url(mcp_serve) -> None:
    live = mcp_serve()
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes(48, 32, "blue")).decode()

    async def body(client: ClientSession) -> Any:
        made = await client.call_tool("generate_image", {"prompt": "a cat", "seed": 1, **TINY})
        first = made.structured_content["images"][0]["id"]
        edit = {"model": "tiny-qwen-image-edit", "steps": 2, "width": 64, "height": 64}
        by_id = await client.call_tool(
            "edit_image", {"prompt": "Picture 1 in snow", "images": [first], **edit}
        )
        by_url = await client.call_tool(
            "edit_image", {"prompt": "Picture 2 next to Picture 1", "images": [data_url, first], **edit}
        )
        return first, by_id, by_url

    first, by_id, by_url = run(live, body)
    for result, count in ((by_id, 1), (by_url, 2)):
        assert not result.is_error, text_of(result)
        assert [image.size for image in decoded_images(result)] == [(64, 64)]
        record = live.services.history.get_image(result.structured_content["images"][0]["id"])
        assert record.metadata["model"] == "tiny-qwen-image-edit"
        assert len(record.metadata["input_images"]) == count
    history_input = live.services.history.get_image(first).metadata
    assert history_input["prompt"] == "a cat"


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        (
            "generate_image",
            {"prompt": "x", "model": "tiny-z-image", "width": 100, "height": 64},
            "width = 100",
        ),
        ("generate_image", {"prompt": "x", "model": "tiny-z-image", "width": 2048, "height": 2048}, "pixels"),
        (
            "generate_image",
            {"prompt": "x", "model": "z-image-turbo", "width": 512, "height": 512},
            "models download",
        ),
        ("generate_image", {"prompt": "x", "model": "tiny-qwen-image-edit"}, "tiny-qwen-image-edit"),
        ("edit_image", {"prompt": "x", "images": ["a", "b", "c", "d"]}, "images"),
        ("edit_image", {"prompt": "x", "images": ["/etc/hostname"]}, "file paths are read only by the stdio"),
        ("edit_image", {"prompt": "x", "images": ["NoSuchImage1"]}, "no image 'NoSuchImage1'"),
        ("get_image", {"id": "../etc"}, "id"),
    ],
)
def test_refusals_are_one_line_tool_errors(
    mcp_serve, tool: str, arguments: dict[str, Any], says: str
) -> None:
    live = mcp_serve()
    result = run(live, lambda client: client.call_tool(tool, arguments))
    assert result.is_error
    message = text_of(result)
    assert says in message and "\n" not in message and "Traceback" not in message
    assert live.services.queue.jobs() == []


def test_a_cancelled_call_cancels_its_job(mcp_serve) -> None:
    live = mcp_serve()
    run(live, cancel_a_long_mcp_call)
    queue = live.services.queue
    [job] = queue.jobs()
    final = wait_until(lambda: (info := queue.get(job.id)) and info.state.finished and info, 120, "cancel")
    assert final.state.value == "cancelled"
    row = wait_until(lambda: live.services.history.get_job(job.id), 30, "history row")
    assert row.state.value == "cancelled" and row.request["client"] == {"via": "mcp"}


def test_mcp_needs_the_key_and_refuses_other_sites(mcp_serve) -> None:
    live = mcp_serve(server={"api_key": "sekret"})
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    with live.client() as http:
        missing = http.post("/mcp", json=initialize, headers=accept)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
        wrong = http.post("/mcp", json=initialize, headers={**accept, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        keyed = {**accept, "Authorization": "Bearer sekret"}
        foreign = http.post("/mcp", json=initialize, headers={**keyed, "Origin": "https://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "foreign_origin"
        stream = http.get("/mcp", headers={**keyed, "Origin": "https://evil.example"})
        assert stream.status_code == 403
        rebinding = http.post("/mcp", json=initialize, headers={**keyed, "Host": "evil.example"})
        assert rebinding.status_code == 400 and rebinding.json()["error"]["code"] == "host_not_allowed"

    # The official client with the key: a whole session works.
    tools = run(live, lambda client: client.list_tools(), headers={"Authorization": "Bearer sekret"})
    assert len(tools.tools) == 6


def test_improve_prompt_list_models_and_a_capped_picture(mcp_serve) -> None:
    live = mcp_serve(mcp={"max_image_kb": 40})

    async def body(client: ClientSession) -> Any:
        improved = await client.call_tool("improve_prompt", {"prompt": "a fox", "model": "tiny-z-image"})
        models = await client.call_tool("list_models", {})
        big = await client.call_tool(
            "generate_image",
            {"prompt": "noise", "model": "tiny-z-image", "width": 256, "height": 256, "steps": 2},
        )
        return improved, models, big

    improved, models, big = run(live, body)
    assert not improved.is_error and improved.structured_content["original_prompt"] == "a fox"
    # The rewrite (or, when the random tiny model's answer is unusable, the prompt and why) as text.
    assert improved.content[0].text.startswith(improved.structured_content["prompt"])
    listed = {model["id"]: model for model in models.structured_content["models"]}
    assert listed["tiny-z-image"]["state"] in {"tiny", "present"}
    assert listed["z-image-turbo"]["state"] == "missing"
    assert "imagestudio models download z-image-turbo" in text_of(models)
    # The 256² noise PNG is far over 40 kB: a downscaled copy that fits, and the text says so.
    [picture] = decoded_images(big)
    facts = big.structured_content["images"][0]
    assert facts["downscaled"] and picture.size == (facts["shown_width"], facts["shown_height"]) != (256, 256)
    assert sum(len(block.data) for block in big.content if block.type == "image") <= 40_000
    assert "Shown downscaled" in text_of(big) and (facts["width"], facts["height"]) == (256, 256)
