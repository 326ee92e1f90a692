"""Bounding what is kept of the fields a client sent that only get recorded (a request's ``client``).

An A1111 client may send any field, and every one the studio does not use is recorded with the image so
the record says what was asked. That record goes into every PNG of the job and its History row, and is
sent back in answers — so it is bounded: a few levels deep, a few dozen entries per level, short
strings, a few kB in all. Whatever is cut is replaced by a short note saying so; nothing here raises.
The walk visits a bounded number of values, so a hostile body costs no more than a small one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 4
MAX_ITEMS = 64
MAX_CHARS = 500
MAX_KEY_CHARS = 100
#: The whole record as JSON; over it, only a note of its size is kept.
MAX_BYTES = 8_000
#: Values visited in all (64 entries on each of 4 levels would otherwise be 16 million).
_BUDGET = 2_000


def bounded(fields: Mapping[Any, Any], *, hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``fields`` cut to the bounds above, as plain JSON values; keys in ``hidden`` (lower case, such as
    credentials) are left out at every level."""
    walk = _Walk(hidden)
    record = walk.object(fields, 1)
    size = len(json.dumps(record, ensure_ascii=False).encode())
    if size > MAX_BYTES:
        return {"not_recorded": f"<{size} bytes of client fields, over {MAX_BYTES}>"}
    return record


class _Walk:
    """One bounded walk: ``budget`` counts the values it may still visit."""

    def __init__(self, hidden: frozenset[str]) -> None:
        self.hidden = hidden
        self.budget = _BUDGET

    def object(self, fields: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        record: dict[str, Any] = {}
        kept = [(key, value) for key, value in fields.items() if str(key).lower() not in self.hidden]
        for index, (key, value) in enumerate(kept):
            if index >= MAX_ITEMS or self.budget <= 0:
                record["more_not_recorded"] = f"<{len(kept) - index} more fields not recorded>"
                break
            record[_text(str(key), MAX_KEY_CHARS)] = self.value(value, depth + 1)
        return record

    def value(self, value: Any, depth: int) -> Any:
        self.budget -= 1
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return _text(value, MAX_CHARS)
        if isinstance(value, (Mapping, list, tuple)):
            if depth > MAX_DEPTH:
                return f"<nested deeper than {MAX_DEPTH} levels, not recorded>"
            if isinstance(value, Mapping):
                return self.object(value, depth)
            items = []
            for index, item in enumerate(value):
                if index >= MAX_ITEMS or self.budget <= 0:
                    items.append(f"<{len(value) - index} more items not recorded>")
                    break
                items.append(self.value(item, depth + 1))
            return items
        return _text(str(value), MAX_CHARS)


def _text(value: str, limit: int) -> str:
    return value if len(value) <= limit else f"<{len(value)} characters not recorded>"
