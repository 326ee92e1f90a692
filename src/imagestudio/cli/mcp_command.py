"""``imagestudio mcp``: the studio as a Model Context Protocol server on stdin/stdout, for AI assistants.

Desktop assistants (Claude Desktop, Cursor, VS Code, LM Studio) start this command and speak MCP over its
stdin/stdout; see docs/clients.md. It runs its own job queue in this process, on this machine's
accelerator, recording into the same History as ``serve`` and the other commands (like them, it never
marks another process's unfinished jobs failed). To share one queue with the studio's pages, use ``/mcp``
on ``imagestudio serve`` instead.
"""

from __future__ import annotations

import logging

from imagestudio.cli.app import ConfigOption, app, friendly_errors, load_config

log = logging.getLogger(__name__)


@app.command("mcp")
@friendly_errors
def mcp_command(config: ConfigOption = None) -> None:
    """Serve the studio's tools to an AI assistant over MCP on stdin/stdout (see docs/clients.md)."""
    import anyio

    from imagestudio.mcp_server.server import serve_stdio
    from imagestudio.services import Services

    settings = load_config(config)
    # One user's assistant on this machine: jobs run here, whatever cluster.backend says (as the CLI's do).
    settings = settings.model_copy(
        update={"cluster": settings.cluster.model_copy(update={"backend": "local"})}
    )
    services = Services.create(settings, history_owner=False)
    services.start()
    log.info("imagestudio MCP server on stdio; outputs in %s", settings.outputs_dir)
    try:
        anyio.run(serve_stdio, services)
    finally:
        services.close()
