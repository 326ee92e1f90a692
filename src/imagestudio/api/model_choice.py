"""Which model an OpenAI-style request runs: a real id as given, or ``auto`` / an alias picked by the task.

Clients written for OpenAI send its model names (Open WebUI ``dall-e-2``, LibreChat ``dall-e-3``, newer ones
``gpt-image-1``); ``server.model_aliases`` maps each to ``auto`` or to a model id, and any other
``gpt-image-*`` counts as ``auto``. ``auto`` (and a missing ``model``) picks by what the request is: a
generation runs ``server.auto_generate_model``, an edit of 1–3 images ``server.auto_edit_model``, one image
with a mask ``server.auto_inpaint_model``. A real model id keeps its strict meaning: it runs that model or
the request is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from imagestudio.errors import InvalidRequest

if TYPE_CHECKING:
    from imagestudio.config import Settings

Task = Literal["generate", "edit", "inpaint"]
AUTO = "auto"


@dataclass(frozen=True)
class ModelChoice:
    """The model to run and the name the client sent (None when it sent none)."""

    model: str
    requested: str | None

    @property
    def picked(self) -> bool:
        """Whether the server chose the model (``auto``, an alias, or no model given)."""
        return self.requested != self.model


def alias_target(settings: Settings, name: str) -> str | None:
    """What an alias stands for (``auto`` or a model id); None if ``name`` is not an alias."""
    aliases = settings.server.model_aliases
    if name in aliases:
        return aliases[name]
    if name.startswith("gpt-image-"):
        return AUTO
    return None


def choose_model(settings: Settings, requested: str | None, task: Task) -> ModelChoice:
    """Resolve ``requested`` for ``task``; raises InvalidRequest when ``auto`` has no model for it."""
    target = requested
    if requested is None or requested == AUTO:
        target = AUTO
    else:
        target = alias_target(settings, requested) or requested
    if target != AUTO:
        return ModelChoice(model=target, requested=requested)
    server = settings.server
    picked = {
        "generate": server.auto_generate_model,
        "edit": server.auto_edit_model,
        "inpaint": server.auto_inpaint_model,
    }[task]
    if picked is None:
        raise InvalidRequest(
            f"model {requested or AUTO!r} has no model for a mask here (server.auto_inpaint_model is null); "
            "name a Z-Image model, or leave the mask out",
            param="mask",
        )
    return ModelChoice(model=picked, requested=requested)
