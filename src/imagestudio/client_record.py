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


def bounded(fields: Mapping[Any, Any]) -> dict[str, Any]:
    """``fields`` cut to the bounds above, as plain JSON values."""
    budget = [_BUDGET]
    record = _object(fields, 1, budget)
    size = len(json.dumps(record, ensure_ascii=False).encode())
    if size > MAX_BYTES:
        return {"not_recorded": f"<{size} bytes of client fields, over {MAX_BYTES}>"}
    return record


def _object(fields: Mapping[Any, Any], depth: int, budget: list[int]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for index, (key, value) in enumerate(fields.items()):
        if index >= MAX_ITEMS or budget[0] <= 0:
            record["more_not_recorded"] = f"<{len(fields) - index} more fields not recorded>"
            break
        record[_text(str(key), MAX_KEY_CHARS)] = _value(value, depth + 1, budget)
    return record


def _value(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _text(value, MAX_CHARS)
    if isinstance(value, (Mapping, list, tuple)):
        if depth > MAX_DEPTH:
            return f"<nested deeper than {MAX_DEPTH} levels, not recorded>"
        if isinstance(value, Mapping):
            return _object(value, depth, budget)
        items = []
        for index, item in enumerate(value):
            if index >= MAX_ITEMS or budget[0] <= 0:
                items.append(f"<{len(value) - index} more items not recorded>")
                break
            items.append(_value(item, depth + 1, budget))
        return items
    return _text(str(value), MAX_CHARS)


def _text(value: str, limit: int) -> str:
    return value if len(value) <= limit else f"<{len(value)} characters not recorded>"
