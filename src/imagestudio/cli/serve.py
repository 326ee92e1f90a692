"""``imagestudio serve``: the web UI and the HTTP API on one local port."""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import Annotated

import typer

from imagestudio.cli.allocator import use_expandable_segments
from imagestudio.cli.app import ConfigOption, app, friendly_errors, load_config
from imagestudio.errors import ConfigError

log = logging.getLogger(__name__)


@app.command()
@friendly_errors
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default server.host: 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", "-p", min=1, max=65535, help="Port (default server.port: 7860).")
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Allow a non-loopback address without an API key (dangerous)."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve the studio in the browser, the OpenAI-compatible images API and the job API."""
    # main() has done this already; the app can also be run without it (embedded, or by tests), and the
    # setting must be in place before torch initialises CUDA: fragmentation costs a few GB on small cards.
    use_expandable_segments(os.environ)
    settings = load_config(config)
    server = settings.server
    host = host or server.host
    port = port or server.port
    from imagestudio.api.security import check_bind

    credential = server.api_key or server.api_auth  # Basic auth guards the server as a key does
    check_bind(host, credential.get_secret_value() if credential else None, insecure)
    # The name it was told to listen on is one of its own (the Host check in front of every route).
    server.host = host
    _check_port_free(host, port)

    import uvicorn

    from imagestudio.cli.server_logging import timestamped_logging

    # Before the services open: a damaged history is reported while they do, and needs its time too.
    log_config = timestamped_logging()
    from imagestudio.api.access_log import ErrorAccessLog
    from imagestudio.server import build_app

    # The API, /mcp, the login page and the studio's pages on one app; every failed request is logged by
    # default (uvicorn's own access log follows -v).
    application = ErrorAccessLog(build_app(settings))
    shown = f"[{host}]" if ":" in host else host
    typer.echo(
        f"imagestudio serving on http://{shown}:{port} (OpenAI base URL: http://{shown}:{port}/v1, "
        f"MCP: http://{shown}:{port}/mcp)",
        err=True,
    )
    uvicorn.Server(
        uvicorn.Config(
            application,
            host=host,
            port=port,
            log_config=log_config,
            log_level="info" if logging.getLogger().isEnabledFor(logging.INFO) else "warning",
            # Open event streams must not hold a shutdown for long; their jobs are cancelled anyway.
            timeout_graceful_shutdown=5,
        )
    ).run()


def _check_port_free(host: str, port: int) -> None:
    """A taken port is a one-line error now, not a traceback from deep inside the server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (pick another with --port)"
                ) from None
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", param="--host"
            ) from None
