"""The Generate page: prompt and settings → a job on the shared queue → progress, preview, images."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import UserError
from imagestudio.job_requests import MAX_COUNT, EditRequest, GenerateRequest, build_image_request
from imagestudio.registry import get_model
from imagestudio.ui import chain
from imagestudio.ui.common import (
    JobPanel,
    UIContext,
    clear_on_input,
    run_job,
    seed_row,
    slot,
    wire_job_panel,
    wire_seed,
)
from imagestudio.ui.control_controls import control_controls
from imagestudio.ui.enhance_controls import enhance_controls, original_prompt, variety_slider, wire_enhance
from imagestudio.ui.page_parts import RESULT_BUTTONS, RESULT_HEIGHT, model_choices, model_info, run_row
from imagestudio.ui.presets import CUSTOM_SIZE, DEFAULT_SIZE, SIZE_PRESETS, SOURCE_SIZE, size_of
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import language
from imagestudio.ui.weights_choice import follow_model, weights_dropdown, weights_value

if TYPE_CHECKING:
    from imagestudio.storage.inputs import InputImage

PAGE = "generate"
#: How the starting picture's editor hands its value to the page: PIL images, alpha kept (the painted
#: layers' alpha is the mask, see :func:`starting_picture`).
SOURCE_TYPE: Literal["pil"] = "pil"
SOURCE_MODE: Literal["RGBA"] = "RGBA"
MASK_COLOR = "#e11d48"
MASK_OPACITY = 0.55


@dataclass
class GeneratePage:
    """The page's components; the History page fills the form ones ("use these settings")."""

    prompt: Any
    model: Any
    size: Any
    width: Any
    height: Any
    steps: Any
    seed_mode: Any
    seed: Any
    reuse: Any
    count: Any
    source: Any
    strength: Any
    lang: Any
    panel: JobPanel
    #: Seed variety slider and the Improve prompt block (ui/enhance_controls.py).
    variety: Any = None
    enhance: Any = None
    #: The last prompts this browser ran (filled from its storage by :mod:`imagestudio.ui.remembered`).
    recent: Any = None
    #: Set by the page's script when the file dropped on the starting picture cannot be decoded.
    source_bad: Any = None
    #: "One prompt per line": each line of the prompt becomes its own job.
    per_line: Any = None
    #: The "Start from a picture" accordion ("Vary this" opens it).
    source_box: Any = None
    #: Edit this / Vary this under the results (see ui/chain.py).
    actions: Any = None
    #: The control image and the hires pass (see ui/control_controls.py).
    control: Any = None
    #: Which weight variant runs (ui/weights_choice.py).
    weights: Any = None
    #: The line under "Reuse last seed" (there is nothing to reuse yet).
    seed_note: Any = None


def build(ctx: UIContext, default_model: str) -> GeneratePage:
    import gradio as gr

    key = ctx.key
    spec = get_model(default_model)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            prompt = gr.Textbox(
                label=key("gen.prompt"),
                placeholder=key("gen.prompt_hint"),
                lines=3,
                max_lines=8,
                elem_id="gen-prompt",
            )
            prompt_err = slot("gen-prompt-error")
            # The run button right under the prompt, so that it is in the window on the first screen.
            run, cancel = run_row(ctx, "gen", key("gen.run"))
            form_err = slot("gen-error")
            per_line = gr.Checkbox(
                label=key("gen.per_line"), info=key("gen.per_line_info"), elem_id="gen-per-line"
            )
            enhance = enhance_controls(ctx, "gen")
            recent = gr.Dropdown(
                [], value=None, label=key("gen.recent"), info=key("gen.recent_info"), elem_id="gen-recent"
            )
            with gr.Row():
                model = gr.Dropdown(
                    model_choices(ctx, "text-to-image"),
                    value=default_model,
                    label=key("gen.model"),
                    info=model_info(ctx, default_model),
                    elem_id="gen-model",
                )
                size = gr.Dropdown(
                    [(p.label, p.value) for p in SIZE_PRESETS]
                    + [(key("gen.size_custom"), CUSTOM_SIZE), (key("gen.size_source"), SOURCE_SIZE)],
                    value=DEFAULT_SIZE,
                    label=key("gen.size"),
                    info=key("gen.size_info"),
                    elem_id="gen-size",
                )
            weights = weights_dropdown(ctx, "gen", default_model)
            model_err = slot("gen-model-error")
            with gr.Row(visible=False) as custom_row:
                width = gr.Number(label=key("gen.width"), value=1024, precision=0, elem_id="gen-width")
                height = gr.Number(label=key("gen.height"), value=1024, precision=0, elem_id="gen-height")
            size_err = slot("gen-size-error")
            with gr.Row():
                steps = gr.Slider(
                    1, 100, value=spec.default_steps, step=1, label=key("gen.steps"),
                    info=key("gen.steps_info"), elem_id="gen-steps",
                )  # fmt: skip
                count = gr.Slider(
                    1, MAX_COUNT, value=1, step=1, label=key("gen.count"), info=key("gen.count_info"),
                    elem_id="gen-count",
                )  # fmt: skip
            steps_err = slot("gen-steps-error")
            seed_mode, seed, reuse, seed_note = seed_row(ctx, "gen", info=True)
            variety = variety_slider(ctx, "gen")
            seed_err = slot("gen-seed-error")
            with gr.Accordion(key("gen.source"), open=False, elem_id="gen-source-box") as source_box:
                source = gr.ImageEditor(
                    label=key("gen.init_image"),
                    type=SOURCE_TYPE,
                    image_mode=SOURCE_MODE,
                    sources=["upload", "clipboard"],
                    # Half-transparent rose strokes on a layer of their own, visible on light and dark
                    # pictures alike: every painted pixel (alpha > 0) is the inpaint mask.
                    brush=gr.Brush(colors=[(MASK_COLOR, MASK_OPACITY)], color_mode="fixed"),
                    eraser=gr.Eraser(),
                    layers=False,
                    transforms=(),
                    height=380,
                    elem_id="gen-source",
                )
                strength = gr.Slider(
                    # The registry's img2img default for the model the page opens with.
                    0.05, 1.0, value=spec.default_strength or 1.0, step=0.05, label=key("gen.strength"),
                    info=key("gen.strength_info"), elem_id="gen-strength",
                )  # fmt: skip
            source_bad = gr.Textbox(visible="hidden", elem_id="gen-source-bad")
            source_err = slot("gen-source-error")
            control = control_controls(ctx, "gen")
            control_err = slot("gen-control-error")
        with gr.Column(scale=6, elem_id="gen-result-col"):
            progress = slot("gen-progress")
            preview = gr.Image(
                label=key("gen.preview"), type="pil", interactive=False, visible=False, height=RESULT_HEIGHT,
                buttons=[], elem_id="gen-preview", elem_classes="is-preview",
            )  # fmt: skip
            gallery = gr.Gallery(
                label=key("gen.result"), columns=2, height=RESULT_HEIGHT, object_fit="contain",
                interactive=False, elem_id="gen-gallery", elem_classes="is-results", format="png",
                buttons=RESULT_BUTTONS,
            )  # fmt: skip
            info = slot("gen-info")
            actions = chain.result_actions(ctx, "gen")
    page = GeneratePage(
        prompt=prompt,
        model=model,
        size=size,
        width=width,
        height=height,
        steps=steps,
        seed_mode=seed_mode,
        seed=seed,
        reuse=reuse,
        seed_note=seed_note,
        count=count,
        source=source,
        strength=strength,
        lang=gr.Textbox(visible=False, elem_id="gen-lang"),
        recent=recent,
        source_bad=source_bad,
        panel=JobPanel(
            page=PAGE,
            run=run,
            cancel=cancel,
            progress=progress,
            preview=preview,
            gallery=gallery,
            info=info,
            last_seed=gr.State(None),
            seed=seed,
            errors={
                "prompt": prompt_err,
                "model": model_err,
                "weights": model_err,
                "width": size_err,
                "height": size_err,
                "size": size_err,
                "steps": steps_err,
                "count": steps_err,
                "seed": seed_err,
                "variety": seed_err,
                "init_image": source_err,
                "mask": source_err,
                "strength": source_err,
                "control": control_err,
                "control.type": control_err,
                "control.weight": control_err,
                "control.start": control_err,
                "hires_scale": control_err,
                "hires_upscaler": control_err,
                "upscaler": control_err,
            },
            form_error=form_err,
            needs_result=[actions.edit_this, actions.vary_this, actions.upscale_this],
        ),
        variety=variety,
        enhance=enhance,
        per_line=per_line,
        source_box=source_box,
        actions=actions,
        control=control,
        weights=weights,
    )
    _wire(ctx, page, custom_row)
    clear_on_input(
        [
            (prompt, prompt_err),
            (model, model_err),
            (size, size_err),
            (width, size_err),
            (height, size_err),
            (steps, steps_err),
            (count, steps_err),
            (seed, seed_err),
            (strength, source_err),
        ]
    )
    return page


def _wire(ctx: UIContext, page: GeneratePage, custom_row: Any) -> None:
    import gradio as gr

    page.size.change(lambda choice: gr.Row(visible=choice == CUSTOM_SIZE), page.size, custom_row, queue=False)
    # ``.input``: only the user's own choice presets the model's steps. "Use these settings" and the
    # remembered settings set the model and the recalled steps together; a ``.change`` handler would run
    # after them and put the default back over the recalled value.
    page.model.input(_steps_for_model, page.model, page.steps, queue=False)
    page.model.change(lambda m: gr.Dropdown(info=model_info(ctx, m)), page.model, page.model, queue=False)
    follow_model(page.model, page.weights)
    page.source_bad.change(
        lambda name, lang: _source_error(ctx, name, language(lang)),
        [page.source_bad, page.lang],
        page.panel.errors["init_image"],
        js=lang_js(2),
        queue=False,
        show_progress="hidden",
    )
    # Taking the picture out also takes out the complaint about it.
    page.source.clear(lambda: ("", ""), None, [page.source_bad, page.panel.errors["init_image"]], queue=False)
    # A starting picture usually wants its own size; the dropdown still allows any other.
    page.source.upload(lambda: gr.Dropdown(value=SOURCE_SIZE), None, page.size, queue=False)
    wire_seed(ctx, page.seed_mode, page.seed, page.reuse, page.panel.last_seed, page.seed_note, page.lang)
    wire_enhance(ctx, page.enhance, page.prompt, page.model, page.lang)
    inputs = [
        page.prompt,
        page.model,
        page.size,
        page.width,
        page.height,
        page.steps,
        page.seed_mode,
        page.seed,
        page.count,
        page.source,
        page.strength,
        page.variety,
        page.enhance.state,
        page.source_bad,
        page.per_line,
        *page.control.inputs(),
        page.weights,
        # The page's language last: lang_js fills in the last input.
        page.lang,
    ]

    def body(*values: Any, request: Any) -> Iterator[dict[Any, Any]]:
        yield from _run(ctx, page, *values, request=request)

    # Enter adds a line to the prompt; Ctrl+Enter (⌘+Enter) runs (the page's script clicks the button).
    wire_job_panel(ctx, page.panel, [page.panel.run.click], inputs, body)


def _steps_for_model(model_id: str) -> Any:
    import gradio as gr

    try:
        return gr.Slider(value=get_model(model_id).default_steps)
    except UserError:
        return gr.skip()


def _run(
    ctx: UIContext,
    page: GeneratePage,
    prompt: str,
    model: str,
    size: str,
    width: float | None,
    height: float | None,
    steps: float,
    seed_mode: str,
    seed: float | None,
    count: float,
    source: dict[str, Any] | None,
    strength: float,
    variety: float,
    improved: dict[str, str] | None,
    source_bad: str,
    per_line: bool,
    control_type: str,
    control_image: Any,
    control_weight: float,
    control_start: float,
    control_end: float,
    hires: bool,
    hires_scale: float,
    weights: str | None,
    lang: str,
    *,
    request: Any,
) -> Iterator[dict[Any, Any]]:
    def submit() -> list[str]:
        from imagestudio.ui.control_controls import request_fields

        extra = request_fields(
            ctx, language(lang), control_type, control_image, control_weight, control_start, control_end,
            hires, hires_scale,
        )  # fmt: skip
        resolved = page_requests(
            ctx,
            language(lang),
            prompt=prompt,
            model=model,
            size=size,
            width=width,
            height=height,
            steps=steps,
            seed=round(seed) if seed_mode == "fixed" and seed is not None else None,
            count=count,
            source=source,
            strength=strength,
            variety=variety,
            improved=improved,
            source_bad=source_bad,
            per_line=per_line,
            extra=extra,
            weights=weights,
        )
        from imagestudio.ui.common import client_of, submit_all

        return submit_all(ctx, resolved, client_of(request))

    yield from run_job(ctx, page.panel, submit, lang, seed_mode, request)


def page_requests(
    ctx: UIContext,
    lang: str,
    *,
    prompt: str,
    model: str,
    size: str,
    width: float | None,
    height: float | None,
    steps: float,
    seed: int | None,
    count: float,
    source: dict[str, Any] | None,
    strength: float,
    variety: float | None,
    improved: dict[str, str] | None,
    source_bad: str = "",
    per_line: bool = False,
    extra: dict[str, Any] | None = None,
    weights: str | None = None,
) -> list[GenerateRequest | EditRequest]:
    """The page's form as resolved requests, one per prompt (every check done; nothing queued yet).

    Text-to-image is built here; with a starting picture, every prompt goes through the builder all
    entry points share for image-in requests (img2img, or inpainting where something is painted).
    """
    if source_bad:
        # The browser could not decode the starting picture: never run plain text-to-image instead.
        raise bad_source_error(ctx, source_bad, lang)
    w, h = size_of(size, width, height)
    init_image, mask = starting_picture(ctx, source, lang)
    texts = prompts_of(prompt, per_line)
    fields: dict[str, Any] = {
        "model": model,
        "width": w,
        "height": h,
        "steps": int(steps),
        "seed": seed,
        "count": int(count),
        "variety": float(variety or 0.0),
        "weights": weights_value(weights),
        # A rewrite by Improve prompt is of the whole text; one prompt per line records none.
        "original_prompt": original_prompt(improved, prompt) if len(texts) == 1 else None,
        # The control image and the hires pass (ui/control_controls.py).
        **(extra or {}),
    }
    settings = ctx.backend.settings
    # Every line is checked before any is queued: one bad line queues nothing.
    if init_image is None:
        return [GenerateRequest.build(prompt=text, **fields).resolved(settings) for text in texts]
    return [
        build_image_request(
            settings,
            prompt=text,
            images=[init_image],
            mask=mask,
            strength=float(strength),
            task="text-to-image",
            **fields,
        )
        for text in texts
    ]


def bad_source_error(ctx: UIContext, file_name: str, lang: str) -> UserError:
    from imagestudio.errors import InvalidImage

    name = f"{ctx.t('field.init_image', lang)} ({file_name})"
    return InvalidImage(
        f"init_image {file_name!r} is not an image (PNG, JPEG or WebP expected)",
        param="init_image",
        code="image_unreadable",
        details={"name": name},
    )


def _source_error(ctx: UIContext, file_name: str, lang: str) -> str:
    """The line under the starting picture as soon as a file is dropped there (empty: a good one)."""
    from imagestudio.ui.widgets import error_html

    if not file_name:
        return ""
    return error_html(ctx.texts.error(bad_source_error(ctx, file_name, lang), lang))


def prompts_of(prompt: str | None, per_line: bool) -> list[str]:
    """The prompts to queue: the whole text, or with "one prompt per line" each non-empty line."""
    text = prompt or ""
    if not per_line:
        return [text]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines or [text]


def starting_picture(
    ctx: UIContext, value: dict[str, Any] | None, lang: str
) -> tuple[InputImage | None, InputImage | None]:
    """(init image, mask) from the image editor: its background, and the pixels painted over it.

    Both go through :func:`read_input_image` like any other input (byte and pixel limits, one-line
    errors). No background: plain text-to-image. Nothing painted: img2img without a mask.
    """
    import io

    import numpy as np
    from PIL import Image

    from imagestudio.storage.inputs import InputLimits, read_input_image

    background = (value or {}).get("background")
    if background is None:
        return None, None
    limits = InputLimits.from_settings(ctx.backend.settings)

    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    init_image = read_input_image(
        png(background), limits, name=ctx.t("field.init_image", lang), label="init_image"
    )
    painted = None
    for layer in (value or {}).get("layers") or []:
        if layer is None:
            continue
        alpha = np.asarray(layer.convert("RGBA"))[..., 3] > 0
        painted = alpha if painted is None else painted | alpha
    if painted is None or not painted.any():
        return init_image, None
    mask_image = Image.fromarray(np.where(painted, 255, 0).astype(np.uint8))
    mask = read_input_image(
        png(mask_image), limits, name=ctx.t("field.mask", lang), purpose="mask", label="mask"
    )
    return init_image, mask
