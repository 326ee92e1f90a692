"""*Improve prompt* (both job pages) and the seed *variety* slider (Generate), built as one compact block.

The button rewrites the prompt box's text with the model's own text encoder (an ``enhance`` job on the
shared queue, see :mod:`imagestudio.engine.enhance`) and puts the rewrite in the box for the user to read
and edit before running; *Undo* brings back what they had typed. The page passes :func:`original_prompt`
of the kept state to its request, so the image's metadata holds both prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ImageStudioError
from imagestudio.jobs.model import JobState
from imagestudio.ui.common import UIContext, client_of, error_message, slot
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import language
from imagestudio.ui.widgets import error_html, note_html

if TYPE_CHECKING:
    from imagestudio.storage.inputs import InputImage

#: Pictures on the Edit page: a function of the uploaded paths and the language → InputImages.
PictureReader = Callable[[list[str | None], str], tuple["InputImage", ...]]


@dataclass
class EnhanceControls:
    improve: Any
    undo: Any
    #: ``{"original": …, "improved": …}`` after an improvement, else None.
    state: Any
    status: Any


def enhance_controls(ctx: UIContext, prefix: str) -> EnhanceControls:
    """The *Improve prompt* / *Undo* buttons and their status line (``<prefix>-improve`` …).

    Call inside a Blocks context, right under the prompt box; wire with :func:`wire_enhance` once the
    page's language box exists.
    """
    import gradio as gr

    key = ctx.key
    with gr.Row(equal_height=True, elem_id=f"{prefix}-improve-row"):
        improve = gr.Button(
            key("enhance.improve"), size="sm", scale=0, min_width=170, elem_id=f"{prefix}-improve"
        )
        undo = gr.Button(
            key("enhance.undo"), size="sm", scale=0, min_width=120, visible=False, elem_id=f"{prefix}-undo"
        )
    status = slot(f"{prefix}-improve-status")
    return EnhanceControls(improve=improve, undo=undo, state=gr.State(None), status=status)


def variety_slider(ctx: UIContext, prefix: str) -> Any:
    """Seed variety, 0 (off) to 1 (``<prefix>-variety``)."""
    import gradio as gr

    return gr.Slider(
        0.0, 1.0, value=0.0, step=0.05, label=ctx.key("gen.variety"), info=ctx.key("gen.variety_info"),
        elem_id=f"{prefix}-variety",
    )  # fmt: skip


def original_prompt(state: dict[str, str] | None, prompt: str | None) -> str | None:
    """The user's own words to record beside ``prompt``: None unless the prompt came from a rewrite."""
    if not state or not prompt or state.get("original") == prompt:
        return None
    return state.get("original")


def wire_enhance(
    ctx: UIContext,
    controls: EnhanceControls,
    prompt: Any,
    model: Any,
    lang: Any,
    pictures: list[Any] | None = None,
    read_pictures: PictureReader | None = None,
) -> None:
    """Improve: ``prompt`` (+ ``pictures`` for an edit model) → rewrite in ``prompt``; Undo: back."""
    import gradio as gr

    pictures = list(pictures or [])
    outputs = [prompt, controls.state, controls.undo, controls.status]

    # The request comes first: Gradio hands special arguments only to positional parameters.
    def improve(request: Any, text: str, model_id: str, state: Any, *rest: Any) -> Iterator[tuple[Any, ...]]:
        *paths, page_lang = rest
        lang_code = language(page_lang)
        yield gr.skip(), gr.skip(), gr.skip(), note_html(ctx.t("enhance.running", lang_code))
        try:
            images = read_pictures(paths, lang_code) if read_pictures is not None else ()
            result = run_enhance(ctx, text or "", model_id, images, client_of(request))
        except (ImageStudioError, RuntimeError) as exc:  # refused, failed or cancelled: said in place
            yield gr.skip(), gr.skip(), gr.skip(), error_html(error_message(ctx, exc, lang_code))
            return
        if result.get("warning"):
            yield gr.skip(), gr.skip(), gr.skip(), note_html(ctx.t("enhance.unusable", lang_code), "warn")
            return
        # A second improvement keeps the words the user typed first, so Undo always goes back to them.
        first = state["original"] if state and state.get("improved") == text else result["original_prompt"]
        new_state = {"original": first, "improved": result["prompt"]}
        done = note_html(ctx.t("enhance.done", lang_code), "ok")
        yield result["prompt"], new_state, gr.Button(visible=True), done

    def undo(state: Any) -> tuple[Any, ...]:
        if not state:
            return gr.skip(), None, gr.Button(visible=False), ""
        return state["original"], None, gr.Button(visible=False), ""

    # Annotated here: this module's annotations are strings, and Gradio looks for the class itself.
    improve.__annotations__["request"] = gr.Request
    inputs = [prompt, model, controls.state, *pictures, lang]
    controls.improve.click(
        improve, inputs, outputs, js=lang_js(len(inputs)), concurrency_limit=None, show_progress="hidden"
    )
    controls.undo.click(undo, controls.state, outputs, queue=False)


def run_enhance(
    ctx: UIContext, prompt: str, model: str, images: tuple[InputImage, ...], client: str | None = None
) -> dict[str, Any]:
    """Queue an ``enhance`` job for ``client`` (its share of the queue counts it), wait for it (it takes
    its turn after running image jobs), return its rewrite.

    Errors come back as the exceptions the page translates (a refused request, a failed job).
    """
    from imagestudio.requests import EnhanceRequest

    request = EnhanceRequest.build(prompt=prompt, model=model, images=images).resolved(ctx.backend.settings)
    job_id = ctx.backend.submit(request, client)
    snapshots = ctx.backend.watch(job_id)
    try:
        snap = next(snap for snap in snapshots if snap.finished)
    finally:
        snapshots.close()
    if snap.state is not JobState.DONE:
        raise snap.error or RuntimeError(f"the rewrite job ended {snap.state.value}")
    result = ctx.backend.enhanced(job_id)
    if result is None:
        raise RuntimeError("the rewrite job finished without a result")
    return result
