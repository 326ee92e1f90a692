"""The studio for AI assistants: a Model Context Protocol server (stdio and Streamable HTTP).

An edge like the CLI and the HTTP API: tool arguments become the same typed requests, run as jobs of the
one queue and land in History. Named ``mcp_server`` so it never shadows the ``mcp`` SDK it is built on.
"""
