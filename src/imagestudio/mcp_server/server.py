"""The MCP server over the studio's tools: the SDK's low-level :class:`~mcp.server.Server`, served over stdio
(``imagestudio mcp``) or Streamable HTTP (``/mcp`` on ``imagestudio serve``).

The low-level server rather than the decorator one, because the tool's result is ours to shape: a bad
argument is an ``isError`` result of one line naming the field (the decorator server answers with pydantic's
multi-line report), and images, links and text are built by :mod:`~imagestudio.mcp_server.results`.
Stored images are also resources (the newest are listed; any is readable by ``imagestudio://images/ID`` or its
URL), so a client that follows a result's resource link with ``resources/read`` gets the full PNG.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import mcp_types as types
from mcp.server import Server
from mcp.shared.exceptions import MCPError

from imagestudio import __version__
from imagestudio.mcp_server.tools import StudioTools, ToolCall, error_result

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext
    from starlette.types import ASGIApp

    from imagestudio.services import Services

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "imagestudio makes and edits pictures on this computer's own GPU. generate_image draws from a prompt; "
    "edit_image changes 1-3 pictures (History ids, this server's image URLs, data: URLs, or file paths "
    "over stdio); improve_prompt writes a detailed prompt first; search_history and get_image find earlier "
    "pictures; list_models says what is installed. A picture too large for a tool result is shown "
    "downscaled and the text says where the full one is."
)
#: A stored image's URI: ``imagestudio://images/ID`` on any transport, or (over HTTP) its URL on this server.
_IMAGE_URI = re.compile(r"(?:^imagestudio://images/|/api/images/)([A-Za-z0-9_-]{1,64})$")
IMAGE_URI_TEMPLATE = "imagestudio://images/{id}"
#: How many of the newest History images resources/list names.
LISTED_IMAGES = 20


def build_server(tools: StudioTools, *, transport: str) -> Server[Any]:
    """The server for one transport: ``"stdio"`` (file paths allowed) or ``"http"`` (URLs and shares)."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools.definitions())

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await tools.call(params.name, params.arguments, _tool_call(ctx, transport))
        except Exception:
            # A bug: the traceback stays in the server's log; the model gets one line, not a protocol error.
            log.exception("tool %s failed", params.name)
            return error_result(
                f"{params.name} failed with an internal error; the server's log has the details"
            )

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        page = await anyio.to_thread.run_sync(lambda: tools.history.list_images(None, limit=LISTED_IMAGES))
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    uri=f"imagestudio://images/{record.id}",
                    name=f"{record.id}.png",
                    title=record.prompt[:80],
                    description=f"{record.model}, seed {record.seed}, {record.width}x{record.height}",
                    mime_type="image/png",
                )
                for record in page.items
            ]
        )

    async def list_resource_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    name="history-image",
                    title="A History image (PNG with its parameters)",
                    uri_template=IMAGE_URI_TEMPLATE,
                    mime_type="image/png",
                )
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        match = _IMAGE_URI.search(uri.split("?")[0])
        path = await anyio.to_thread.run_sync(tools.history.image_file, match.group(1)) if match else None
        if path is None:
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"no image at {uri[:200]!r}", data={"uri": uri[:200]}
            )
        data = await anyio.to_thread.run_sync(Path(path).read_bytes)
        blob = base64.b64encode(data).decode("ascii")
        return types.ReadResourceResult(
            contents=[types.BlobResourceContents(uri=uri, mime_type="image/png", blob=blob)]
        )

    return Server(
        "imagestudio",
        version=__version__,
        title="imagestudio",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
    )


def _tool_call(ctx: ServerRequestContext[Any], transport: str) -> ToolCall:
    async def report(progress: float, total: float | None, message: str | None) -> None:
        await ctx.session.report_progress(progress, total, message)

    if transport == "stdio":
        # One user on their own machine: their files are theirs to name; no per-client share.
        return ToolCall(report=report, local_files=True, client=None)
    request = ctx.request
    url = getattr(request, "url", None)
    base = f"{url.scheme}://{url.netloc}" if url is not None else None
    client = getattr(request, "client", None)

    def url_of(image_id: str) -> str:
        return f"{base}/api/images/{image_id}"

    return ToolCall(
        report=report,
        url_of=url_of if base is not None else None,
        client=client.host if client is not None else None,
        local_files=False,
    )


async def serve_stdio(services: Services) -> None:
    """Serve one client over this process's stdin/stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    server = build_server(StudioTools(services.settings, services.queue, services.history), transport="stdio")
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


class McpHttp:
    """``/mcp`` on the web server: the SDK's Streamable HTTP session manager over the app's services.

    ``app`` is the ASGI endpoint to route ``/mcp`` to; :meth:`lifespan` must wrap the web app's lifespan
    (the manager's sessions run in its task group). The web app's own middleware — Host allow-list,
    Origin check, API key, body limit — stands in front of it like any route.
    """

    def __init__(self, services: Services) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

        tools = StudioTools(services.settings, services.queue, services.history)
        self.manager = StreamableHTTPSessionManager(
            build_server(tools, transport="http"),
            # The web app's guards do what the SDK's DNS-rebinding settings would, with the server's own
            # allow-lists (server.allowed_hosts, server.cors_origins).
            security_settings=None,
            max_request_body_size=int(services.settings.server.max_upload_mb * 1_000_000),
        )
        self.app: ASGIApp = StreamableHTTPASGIApp(self.manager)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield


def mount_mcp(app: Any, path: str = "/mcp") -> McpHttp:
    """Route ``path`` of the FastAPI ``app`` to the MCP server and run its sessions with the app.

    Call before anything is mounted at ``/`` (the studio's pages), so the route is matched first.
    """
    from starlette.routing import Route

    mcp = McpHttp(app.state.services)
    app.router.routes.append(Route(path, endpoint=mcp.app))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state, mcp.running():
            yield state

    app.router.lifespan_context = lifespan
    return mcp
