"""The server's log format: every line starts with its date and time.

A server runs for days; "job failed" without a time cannot be matched to anything. The CLI's one-shot
commands keep the plain format.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

SERVER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: ISO-like, sortable, local time (what the user's clock shows).
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamped_logging() -> dict[str, Any]:
    """Put timestamps on our own log lines now, and return uvicorn's log config with them too."""
    import uvicorn.config

    formatter = logging.Formatter(SERVER_LOG_FORMAT, DATE_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for name in ("default", "access"):
        entry = config["formatters"][name]
        entry["fmt"] = "%(asctime)s " + entry["fmt"]
        entry["datefmt"] = DATE_FORMAT
    return config
