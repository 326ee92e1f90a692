"""The weights choice beside the model on the Generate and Edit pages: auto or one of the model's variants.

The list follows the chosen model (each model has its own variants); ``auto`` sends nothing, so the
config's ``models.<id>.weights`` decides, as it does for the CLI and the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagestudio.registry import MODELS

if TYPE_CHECKING:
    from imagestudio.ui.common import UIContext

AUTO = "auto"


def weights_choices(model_id: str) -> list[tuple[str, str]]:
    spec = MODELS.get(model_id)
    names = [v.name for v in spec.weight_variants] if spec is not None else []
    return [(name, name) for name in (AUTO, *names)]


def weights_dropdown(ctx: UIContext, prefix: str, model_id: str) -> Any:
    import gradio as gr

    return gr.Dropdown(
        weights_choices(model_id),
        value=AUTO,
        label=ctx.key("weights.label"),
        info=ctx.key("weights.info"),
        elem_id=f"{prefix}-weights",
    )


def follow_model(model: Any, weights: Any) -> None:
    """Offer the chosen model's variants (back to auto when the model changes)."""
    import gradio as gr

    model.input(lambda m: gr.Dropdown(choices=weights_choices(m), value=AUTO), model, weights, queue=False)


def weights_value(choice: str | None) -> str | None:
    """The request's ``weights``: None for auto (the config decides)."""
    return None if not choice or choice == AUTO else choice
