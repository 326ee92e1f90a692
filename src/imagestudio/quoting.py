"""Values quoted in one-line error messages, kept short whatever the user sent.

An error names the value it refuses, but a 100 kB prompt or a config value built by a YAML alias bomb
must not become a 100 kB (or 35 MB) message: the value is cut to a readable head with its real size.
"""

from __future__ import annotations

import reprlib

#: Characters of a quoted value an error message keeps.
QUOTE_CHARS = 60
#: The longest user-error line an edge prints; anything beyond is cut (a last safety net).
MESSAGE_CHARS = 1000


def short_repr(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters, saying the full size of a long text.

    Built with :mod:`reprlib`, which stops at a few items and levels instead of rendering the whole
    value first: one of millions of nested items (a YAML alias bomb) costs microseconds, not gigabytes.
    """
    shown = reprlib.Repr()
    shown.maxstring = shown.maxother = limit
    shown.maxlist = shown.maxtuple = shown.maxdict = shown.maxset = 4
    shown.maxlevel = 2
    text = shown.repr(value)
    if isinstance(value, (str, bytes)) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{text} ({len(value)} {unit})"
    return text if len(text) <= 2 * limit else f"{text[: 2 * limit]}…"


def clip_message(message: str, limit: int = MESSAGE_CHARS) -> str:
    """``message`` on one line, at most about ``limit`` characters."""
    line = " ".join(message.split("\n"))
    if len(line) <= limit:
        return line
    return f"{line[:limit]}… (message cut, {len(line)} characters)"
