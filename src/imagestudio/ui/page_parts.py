"""What the Generate and Edit pages share: the result area's shape and the model list's entries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from imagestudio.registry import MODELS

if TYPE_CHECKING:
    from gradio import Button

    from imagestudio.ui.common import UIContext

#: The result area's height (px); the live preview takes the same box while a job runs.
RESULT_HEIGHT = 520
#: No "Share" on a local studio's results (Gradio's share link would upload them).
RESULT_BUTTONS: list[Literal["share", "download", "download_all", "fullscreen"] | Button] = [
    "download",
    "fullscreen",
]


def model_title(ctx: UIContext, model_id: str, title: str) -> Any:
    """A model's name for the page: translated where it says more than a name (the offline tiny models)."""
    return ctx.key(f"model.{model_id}") if ctx.texts.has(f"model.{model_id}") else title


def model_info(ctx: UIContext, model_id: str, default: str = "gen.model_info") -> Any:
    """The line under the model list: an offline model's "random weights: noise" stays readable there
    while the list is closed (its name alone is cut off)."""
    spec = MODELS.get(model_id)
    return ctx.key("model.noise_info") if spec is not None and spec.tiny else ctx.key(default)


def model_choices(ctx: UIContext, task: str) -> list[tuple[Any, str]]:
    return [(model_title(ctx, spec.id, spec.title), spec.id) for spec in MODELS.values() if spec.task == task]
