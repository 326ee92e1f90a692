"""The Generate page's *Control and hires* block: a control image with its map shown before running, and
the hires pass switch.

The map shown is the one the job will use (the same function makes it, at the picture's own size), so
what the user sees is what steers the model. The weight slider spans the model card's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.registry import CONTROLNETS, DETECTED_CONTROL_TYPES

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.job_requests import ControlInput
    from imagestudio.ui.common import UIContext

#: The card's range (every ControlNet in the registry shares it).
_CARD = next(iter(CONTROLNETS.values()))
CONTROL_CHOICES = (*DETECTED_CONTROL_TYPES, "map")
#: The map preview is made at most this big (the job makes its own at the output size).
PREVIEW_SIDE = 512


@dataclass
class ControlControls:
    box: Any
    type: Any
    image: Any
    weight: Any
    start: Any
    end: Any
    detected: Any
    hires: Any
    hires_scale: Any

    def inputs(self) -> list[Any]:
        """The values :func:`request_fields` takes, in its order."""
        return [self.type, self.image, self.weight, self.start, self.end, self.hires, self.hires_scale]

    def settings_fields(self) -> list[Any]:
        """What History's *Use these settings* sets here, in :meth:`settings_values`' order."""
        return [self.box, *self.inputs()]

    def settings_values(self, meta: dict[str, Any], entry: Any) -> tuple[Any, ...]:
        """The block as a past result ran: its control (type, picture, weight, window) and hires switch.

        A result made without control empties the picture, so one left there from other work does not
        steer the rerun; a result whose control picture is no longer kept leaves the block as it is.
        """
        import gradio as gr

        from imagestudio.ui.history_page import kept_input

        hires = meta.get("hires_scale")
        hires_values = (bool(hires), float(hires) if hires else gr.skip())
        control = meta.get("control")
        if not isinstance(control, dict):
            return (gr.skip(), gr.skip(), None, *(gr.skip(),) * 3, *hires_values)
        picture = kept_input(entry, control.get("image"))
        if picture is None:
            return (gr.skip(),) * 6 + hires_values
        weight = control.get("weight")
        return (
            gr.Accordion(open=True),
            control.get("type") if control.get("type") in CONTROL_CHOICES else gr.skip(),
            picture,
            float(weight) if weight is not None else gr.skip(),
            float(control.get("start") or 0.0),
            float(control["end"]) if control.get("end") is not None else 1.0,
            *hires_values,
        )


def control_controls(ctx: UIContext, prefix: str) -> ControlControls:
    import gradio as gr

    key = ctx.key
    with gr.Accordion(key("ctl.box"), open=False, elem_id=f"{prefix}-control-box") as box:
        with gr.Row():
            with gr.Column():
                kind = gr.Radio(
                    [(key(f"ctl.type_{name}"), name) for name in CONTROL_CHOICES],
                    value=CONTROL_CHOICES[0],
                    label=key("ctl.type"),
                    info=key("ctl.type_info"),
                    elem_id=f"{prefix}-control-type",
                )
                image = gr.Image(
                    label=key("ctl.image"), type="pil", sources=["upload", "clipboard"], height=220,
                    buttons=["download", "fullscreen"],
                    elem_id=f"{prefix}-control-image",
                )  # fmt: skip
            detected = gr.Image(
                label=key("ctl.detected"), type="pil", interactive=False, height=220, buttons=[],
                elem_id=f"{prefix}-control-map",
            )  # fmt: skip
        weight = gr.Slider(
            _CARD.min_weight, _CARD.max_weight, value=_CARD.default_weight, step=0.01,
            label=key("ctl.weight"), info=key("ctl.weight_info"), elem_id=f"{prefix}-control-weight",
        )  # fmt: skip
        with gr.Row():
            start = gr.Slider(
                0, 1, value=0, step=0.05, label=key("ctl.start"), elem_id=f"{prefix}-control-start"
            )
            end = gr.Slider(0, 1, value=1, step=0.05, label=key("ctl.end"), elem_id=f"{prefix}-control-end")
        with gr.Row():
            hires = gr.Checkbox(label=key("ctl.hires"), info=key("ctl.hires_info"), elem_id=f"{prefix}-hires")
            hires_scale = gr.Slider(
                1.25, 4, value=2, step=0.25, label=key("ctl.hires_scale"), elem_id=f"{prefix}-hires-scale"
            )
    controls = ControlControls(box, kind, image, weight, start, end, detected, hires, hires_scale)
    for trigger in (image.change, kind.change):
        trigger(detected_map, [kind, image], detected, queue=False, show_progress="hidden")
    return controls


def detected_map(kind: str, picture: Image.Image | None) -> Image.Image | None:
    """The map the control will use, for the page to show next to the picture (None: no picture)."""
    from imagestudio.engine.control import MODEL_DETECTED, control_map

    # A detector model's map is made by the job (the pages never run a model): no preview for it.
    if picture is None or kind in MODEL_DETECTED:
        return None
    from imagestudio.job_requests import ControlInput

    scale = min(1.0, PREVIEW_SIDE / max(picture.size))
    width, height = max(1, round(picture.width * scale)), max(1, round(picture.height * scale))
    # The preview needs no checks or hash: control_map reads only the picture itself.
    preview: Any = _Picture(picture)
    return control_map(ControlInput.model_construct(type=kind, image=preview), width, height)


@dataclass
class _Picture:
    """What :func:`control_map` reads of an input picture."""

    image: Any


def request_fields(
    ctx: UIContext,
    lang: str,
    kind: str,
    picture: Image.Image | None,
    weight: float,
    start: float,
    end: float,
    hires: bool,
    hires_scale: float,
) -> dict[str, Any]:
    """The request fields the block adds: a control input when a picture is there, the hires scale."""
    fields: dict[str, Any] = {}
    if picture is not None:
        fields["control"] = _control(ctx, lang, kind, picture, weight, start, end)
    if hires:
        fields["hires_scale"] = float(hires_scale)
    return fields


def _control(
    ctx: UIContext, lang: str, kind: str, picture: Image.Image, weight: float, start: float, end: float
) -> ControlInput:
    import io

    from imagestudio.job_requests import ControlInput
    from imagestudio.storage.inputs import InputLimits, read_input_image

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    image = read_input_image(
        buffer.getvalue(),
        InputLimits.from_settings(ctx.backend.settings),
        name=ctx.t("ctl.image", lang),
        label="control",
    )
    return ControlInput.build(
        type=kind, image=image, weight=float(weight), start=float(start), end=float(end)
    )
