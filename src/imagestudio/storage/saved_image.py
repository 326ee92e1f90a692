"""One image written to the outputs folder, as every layer speaks of it: studio, queue, events, history.

The studio makes it when it writes the PNG, the queue carries it in the job's snapshot and terminal
event, and the history records it; none of them re-spells it. The prompt, negative prompt and model
are in ``metadata`` (the PNG's own fields), so they are not repeated here.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def new_image_id() -> str:
    """An opaque, unguessable image id: 16 URL-safe characters (clients only ever see ids)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class SavedImage:
    """An image file in the outputs folder. ``path`` is server-side only and never sent to a client."""

    id: str
    path: Path
    seed: int
    width: int
    height: int
    #: The fields embedded in the PNG (prompt, model, every parameter it was made with).
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def public(self) -> dict[str, Any]:
        """What a client may see of it: the id, the seed and the size."""
        return {"id": self.id, "seed": self.seed, "width": self.width, "height": self.height}
