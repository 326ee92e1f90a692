"""The Edit page: one to three pictures and an instruction → an edit job on the shared queue."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from imagestudio.ui.enhance_controls import enhance_controls, original_prompt, wire_enhance
from imagestudio.ui.page_parts import RESULT_BUTTONS, RESULT_HEIGHT, model_choices, model_info, run_row
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import language
from imagestudio.ui.weights_choice import follow_model, weights_dropdown, weights_value

if TYPE_CHECKING:
    from imagestudio.storage.inputs import InputImage
    from imagestudio.ui.backend import HistoryEntry

PAGE = "edit"
LIGHTNING_STEPS = 4


@dataclass
class EditPage:
    images: list[Any]
    instruction: Any
    negative: Any
    true_cfg: Any
    steps: Any
    lightning: Any
    model: Any
    seed_mode: Any
    seed: Any
    reuse: Any
    lang: Any
    panel: JobPanel
    #: The Improve prompt block (ui/enhance_controls.py).
    enhance: Any = None
    #: The steps and true CFG the user had before ticking Lightning, put back when it is unticked.
    before_lightning: Any = None
    #: Edit this / Vary this under the result (see ui/chain.py).
    actions: Any = None
    #: Before/after: Picture 1 against the result.
    compare: Any = None
    #: Which weight variant runs (ui/weights_choice.py).
    weights: Any = None
    #: The line under "Reuse last seed" (there is nothing to reuse yet).
    seed_note: Any = None

    def settings_fields(self) -> list[Any]:
        """What "use these settings" on the History page fills, the kept reference pictures included."""
        return [
            *self.images,
            self.instruction,
            self.negative,
            self.true_cfg,
            self.steps,
            self.lightning,
            self.model,
            self.seed_mode,
            self.seed,
        ]

    def settings_values(self, meta: dict[str, Any], entry: HistoryEntry) -> tuple[Any, ...]:
        import gradio as gr

        kept = list(entry.inputs)[: len(self.images)]
        # Slots beyond the edit's pictures are emptied: the edit is restored as it was made.
        pictures = [str(path) for path in kept] + [None] * (len(self.images) - len(kept))
        if not kept:
            pictures = [gr.skip()] * len(self.images)  # inputs not kept (older history): leave the slots
        return (
            *pictures,
            meta.get("prompt", entry.prompt),
            meta.get("negative_prompt") or "",
            meta.get("true_cfg_scale") or gr.skip(),
            meta.get("steps") or gr.skip(),
            bool(meta.get("lightning")),
            meta.get("model", entry.model) or gr.skip(),
            "fixed",
            # Shown with its value: a hidden number box kept its old value, and the seed mode's change
            # then drew a new random seed over the recorded one.
            gr.Number(value=entry.seed, visible=True),
        )


def build(ctx: UIContext, default_model: str) -> EditPage:
    import gradio as gr

    from imagestudio.ui.uploads import image_input

    key = ctx.key
    spec = get_model(default_model)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            with gr.Row():
                images = [
                    image_input(
                        label=key(f"edit.image_{n}"),
                        sources=["upload", "clipboard"],
                        height=200,
                        elem_id=f"edit-image-{n}",
                    )
                    for n in (1, 2, 3)
                ]
            images_err = slot("edit-images-error")
            instruction = gr.Textbox(
                label=key("edit.instruction"),
                placeholder=key("edit.instruction_hint"),
                lines=2,
                max_lines=6,
                elem_id="edit-instruction",
            )
            instruction_err = slot("edit-instruction-error")
            run, cancel = run_row(ctx, "edit", key("edit.run"))
            form_err = slot("edit-error")
            enhance = enhance_controls(ctx, "edit")
            negative = gr.Textbox(
                label=key("edit.negative"), placeholder=key("edit.negative_hint"), elem_id="edit-negative"
            )
            negative_err = slot("edit-negative-error")
            with gr.Row():
                model = gr.Dropdown(
                    model_choices(ctx, "edit"),
                    value=default_model,
                    label=key("edit.model"),
                    info=model_info(ctx, default_model, "edit.model_info"),
                    elem_id="edit-model",
                )
                # Only for a model that has a Lightning LoRA (never ticked for one that would refuse it).
                lightning = gr.Checkbox(
                    label=key("edit.lightning"), info=key("edit.lightning_info"), elem_id="edit-lightning",
                    visible=bool(spec.lightning_files),
                )  # fmt: skip
            weights = weights_dropdown(ctx, "edit", default_model)
            model_err = slot("edit-model-error")
            with gr.Row():
                true_cfg = gr.Slider(
                    1.0, 10.0, value=spec.default_true_cfg or 1.0, step=0.1, label=key("edit.true_cfg"),
                    info=key("edit.true_cfg_info"), elem_id="edit-true-cfg",
                )  # fmt: skip
                steps = gr.Slider(
                    2, 100, value=spec.default_steps, step=1, label=key("gen.steps"), elem_id="edit-steps"
                )
            steps_err = slot("edit-steps-error")
            seed_mode, seed, reuse, seed_note = seed_row(ctx, "edit", info=False)
        with gr.Column(scale=6, elem_id="edit-result-col"):
            progress = slot("edit-progress")
            preview = gr.Image(
                label=key("gen.preview"), type="pil", interactive=False, visible=False, height=RESULT_HEIGHT,
                buttons=[], elem_id="edit-preview", elem_classes="is-preview",
            )  # fmt: skip
            gallery = gr.Gallery(
                label=key("gen.result"), columns=1, height=RESULT_HEIGHT, object_fit="contain",
                interactive=False, elem_id="edit-gallery", elem_classes="is-results", format="png",
                buttons=RESULT_BUTTONS,
            )  # fmt: skip
            info = slot("edit-info")
            compare = gr.ImageSlider(
                label=key("chain.compare"), type="filepath", interactive=False, visible=False, height=420,
                elem_id="edit-compare",
            )  # fmt: skip
            actions = chain.result_actions(ctx, "edit")
    page = EditPage(
        images=images,
        instruction=instruction,
        negative=negative,
        true_cfg=true_cfg,
        steps=steps,
        lightning=lightning,
        model=model,
        seed_mode=seed_mode,
        seed=seed,
        reuse=reuse,
        seed_note=seed_note,
        lang=gr.Textbox(visible=False, elem_id="edit-lang"),
        before_lightning=gr.State(None),
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
                "images": images_err,
                "image": images_err,
                "prompt": instruction_err,
                "negative_prompt": negative_err,
                "true_cfg_scale": steps_err,
                "steps": steps_err,
                "lightning": model_err,
                "model": model_err,
                "weights": model_err,
            },
            form_error=form_err,
            extra_outputs=[compare],
            needs_result=[actions.edit_this, actions.vary_this, actions.upscale_this],
        ),
        enhance=enhance,
        actions=actions,
        compare=compare,
        weights=weights,
    )
    _wire(ctx, page)
    clear_on_input(
        [
            (instruction, instruction_err),
            (negative, negative_err),
            (model, model_err),
            (lightning, model_err),
            (true_cfg, steps_err),
            (steps, steps_err),
        ]
    )
    for image in images:
        image.clear(lambda: "", None, images_err, queue=False, show_progress="hidden")
    return page


def _wire(ctx: UIContext, page: EditPage) -> None:
    import gradio as gr

    def lightning_changed(
        on: bool, steps: float, true_cfg: float, before: tuple[float, float] | None
    ) -> tuple[Any, Any, Any]:
        if on:
            # Remember what the user had: unticking Lightning gives it back, not the model's defaults.
            return gr.Slider(value=LIGHTNING_STEPS), gr.Slider(value=1.0), (steps, true_cfg)
        if before is None:
            return gr.skip(), gr.skip(), None
        return gr.Slider(value=before[0]), gr.Slider(value=before[1]), None

    page.lightning.input(
        lightning_changed,
        [page.lightning, page.steps, page.true_cfg, page.before_lightning],
        [page.steps, page.true_cfg, page.before_lightning],
        queue=False,
    )

    def model_changed(model_id: str) -> tuple[Any, Any]:
        try:
            has_lightning = bool(get_model(model_id).lightning_files)
        except Exception:  # noqa: BLE001 - an unknown id is refused when the job is sent
            has_lightning = False
        lightning = gr.Checkbox(visible=True) if has_lightning else gr.Checkbox(visible=False, value=False)
        return gr.Dropdown(info=model_info(ctx, model_id, "edit.model_info")), lightning

    page.model.change(model_changed, page.model, [page.model, page.lightning], queue=False)
    follow_model(page.model, page.weights)

    def checked(path: str | None, number: int, lang: str) -> tuple[Any, str]:
        """Check an upload as soon as it arrives: a bad file is taken out again and explained."""
        from imagestudio.errors import UserError
        from imagestudio.ui.common import error_message
        from imagestudio.ui.widgets import error_html

        try:
            read_uploads(ctx, [*([None] * (number - 1)), path], language(lang))
        except UserError as exc:
            return gr.Image(value=None), error_html(error_message(ctx, exc, language(lang)))
        return gr.skip(), ""

    def checker(number: int) -> Any:
        return lambda path, lang: checked(path, number, lang)

    for number, image in enumerate(page.images, start=1):
        image.upload(
            checker(number),
            [image, page.lang],
            [image, page.panel.errors["images"]],
            js=lang_js(2),
            queue=False,
            show_progress="hidden",
        )
    wire_seed(ctx, page.seed_mode, page.seed, page.reuse, page.panel.last_seed, page.seed_note, page.lang)
    # The edit model rewrites the instruction while looking at the pictures.
    wire_enhance(
        ctx,
        page.enhance,
        page.instruction,
        page.model,
        page.lang,
        pictures=page.images,
        read_pictures=lambda paths, lang: read_uploads(ctx, paths, lang),
    )
    inputs = [
        *page.images,
        page.instruction,
        page.negative,
        page.true_cfg,
        page.steps,
        page.lightning,
        page.model,
        page.seed_mode,
        page.seed,
        page.enhance.state,
        page.weights,
        # The page's language last: lang_js fills in the last input.
        page.lang,
    ]

    def body(*values: Any, request: Any) -> Iterator[dict[Any, Any]]:
        yield from _run(ctx, page, *values, request=request)

    wire_job_panel(ctx, page.panel, [page.panel.run.click], inputs, body)


def read_uploads(ctx: UIContext, paths: Sequence[str | None], lang: str) -> tuple[InputImage, ...]:
    """The uploaded pictures, in order, checked like every other input image (size, pixels, format)."""
    from imagestudio.storage.inputs import InputLimits, read_input_image

    limits = InputLimits.from_settings(ctx.backend.settings)
    images = []
    for number, path in enumerate(paths, start=1):
        if not path:
            continue
        images.append(
            read_input_image(Path(path), limits, name=ctx.t(f"edit.image_{number}", lang), label="image")
        )
    return tuple(images)


def _run(
    ctx: UIContext,
    page: EditPage,
    image1: str | None,
    image2: str | None,
    image3: str | None,
    instruction: str,
    negative: str,
    true_cfg: float,
    steps: float,
    lightning: bool,
    model: str,
    seed_mode: str,
    seed: float | None,
    improved: dict[str, str] | None,
    weights: str | None,
    lang: str,
    *,
    request: Any,
) -> Iterator[dict[Any, Any]]:
    def submit() -> str:
        from imagestudio.job_requests import build_image_request
        from imagestudio.ui.common import client_of

        check_order(ctx, [image1, image2, image3], language(lang))
        resolved = build_image_request(
            ctx.backend.settings,
            model=model,
            prompt=instruction or "",
            original_prompt=original_prompt(improved, instruction),
            negative_prompt=(negative or "").strip() or None,
            images=read_uploads(ctx, [image1, image2, image3], language(lang)),
            true_cfg_scale=float(true_cfg),
            steps=int(steps),
            lightning=LIGHTNING_STEPS if lightning else None,
            seed=round(seed) if seed_mode == "fixed" and seed is not None else None,
            weights=weights_value(weights),
        )
        return ctx.backend.submit(resolved, client_of(request))

    import gradio as gr

    def compare(update: dict[Any, Any], results: list[Any]) -> None:
        if image1 and results and page.panel.gallery in update:
            # Before and after: the first reference against the newest result.
            after = results[-1]
            before = before_picture(image1, (after.width, after.height))
            update[page.compare] = gr.ImageSlider(value=(before, str(after.path)), visible=True)

    for update in run_job(ctx, page.panel, submit, lang, seed_mode, request, on_results=compare):
        if page.compare not in update and update.get(page.panel.info) == "":
            update[page.compare] = gr.ImageSlider(value=None, visible=False)  # a new edit started
        yield update


def check_order(ctx: UIContext, paths: Sequence[str | None], lang: str) -> None:
    """Refuse pictures with a gap before them (only Picture 2 filled): the model numbers the pictures it
    gets from 1, so an instruction about "Picture 2" would be read against the wrong picture."""
    from imagestudio.errors import InvalidRequest

    for number, path in enumerate(paths, start=1):
        if path and number > 1 and not paths[number - 2]:
            empty = ctx.t(f"edit.image_{number - 1}", lang)
            filled = ctx.t(f"edit.image_{number}", lang)
            raise InvalidRequest(
                f"{empty} is empty while {filled} is filled: put the pictures in order from Picture 1",
                param="images",
                code="picture_gap",
                details={"empty": empty, "filled": filled},
            )


def before_picture(path: str, size: tuple[int, int]) -> Any:
    """Picture 1 at the result's size, for the before/after slider.

    The slider lays its two pictures over each other: of different shapes, one was cropped and the other
    left a blank strip. The edit's result has Picture 1's shape up to the model's rounding (the pipeline
    resizes its references itself), so Picture 1 scaled to the result's size lines up with it.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    return upright.resize(size, Image.Resampling.LANCZOS)
