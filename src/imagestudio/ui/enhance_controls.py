"""*Improve prompt* (both job pages) and the seed *variety* slider (Generate), built as one compact block.

The button rewrites the prompt box's text with the model's own text encoder (an ``enhance`` job on the
shared queue, see :mod:`imagestudio.engine.enhance`) and puts the rewrite in the box for the user to read
and edit before running; *Undo* brings back what they had typed. While the job waits or runs, *Cancel*
in the button's place cancels it through the queue and leaves the prompt as it was. The page passes
:func:`original_prompt` of the kept state to its request, so the image's metadata holds both prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ImageStudioError, JobCancelled
from imagestudio.jobs.model import JobState
from imagestudio.ui.common import UIContext, client_of, error_message, session_of, slot
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
    #: Shown instead of *Improve prompt* while its job waits or runs.
    cancel: Any = None
    #: The page's name in the tab's list of jobs (:class:`SessionJobs`): what *Cancel* cancels.
    jobs_page: str = ""


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
        cancel = gr.Button(
            key("enhance.cancel"), size="sm", scale=0, min_width=170, variant="stop", visible=False,
            elem_id=f"{prefix}-improve-cancel",
        )  # fmt: skip
        undo = gr.Button(
            key("enhance.undo"), size="sm", scale=0, min_width=120, visible=False, elem_id=f"{prefix}-undo"
        )
    status = slot(f"{prefix}-improve-status")
    return EnhanceControls(
        improve=improve,
        undo=undo,
        state=gr.State(None),
        status=status,
        cancel=cancel,
        jobs_page=f"{prefix}-improve",
    )


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
    """Improve: ``prompt`` (+ ``pictures`` for an edit model) → rewrite in ``prompt``; Undo: back;
    Cancel: the running improvement, through the queue."""
    import gradio as gr

    pictures = list(pictures or [])
    outputs = [prompt, controls.state, controls.undo, controls.status, controls.improve, controls.cancel]

    # The request comes first: Gradio hands special arguments only to positional parameters.
    def improve(request: Any, text: str, model_id: str, state: Any, *rest: Any) -> Iterator[tuple[Any, ...]]:
        *paths, page_lang = rest
        lang_code = language(page_lang)

        def images() -> tuple[InputImage, ...]:
            return read_pictures(paths, lang_code) if read_pictures is not None else ()

        session = session_of(request)
        yield from improve_steps(
            ctx, controls, session, text, model_id, state, images, lang_code, client=client_of(request)
        )

    def cancel(request: Any) -> None:
        cancel_improvement(ctx, controls, session_of(request))

    def undo(state: Any) -> tuple[Any, ...]:
        if not state:
            return gr.skip(), None, gr.Button(visible=False), ""
        return state["original"], None, gr.Button(visible=False), ""

    # This module's annotations are strings (postponed evaluation): Gradio needs the real class.
    improve.__annotations__["request"] = gr.Request
    cancel.__annotations__["request"] = gr.Request
    inputs = [prompt, model, controls.state, *pictures, lang]
    controls.improve.click(
        improve, inputs, outputs, js=lang_js(len(inputs)), concurrency_limit=None, show_progress="hidden"
    )
    controls.cancel.click(cancel, None, None, queue=False)
    controls.undo.click(undo, controls.state, outputs[:4], queue=False)


def improve_steps(
    ctx: UIContext,
    controls: EnhanceControls,
    session: str,
    text: str,
    model_id: str,
    state: dict[str, str] | None,
    images: Callable[[], tuple[InputImage, ...]],
    lang: str,
    client: str | None = None,
) -> Iterator[tuple[Any, ...]]:
    """The page's updates for one *Improve prompt* press, as (prompt, kept state, Undo, status line,
    Improve, Cancel): Cancel takes Improve's place while the job is in the queue, and a refused,
    failed or cancelled job leaves the prompt as it was with one line saying so."""
    import gradio as gr

    from imagestudio.job_requests import EnhanceRequest

    waiting = (gr.Button(visible=False), gr.Button(visible=True))
    back = (gr.Button(visible=True), gr.Button(visible=False))
    skip = (gr.skip(), gr.skip(), gr.skip())
    try:
        request = EnhanceRequest.build(prompt=text or "", model=model_id, images=images())
        # The client's share of the queue counts this rewrite too (see ui.common.client_of).
        job_id = ctx.backend.submit(request.resolved(ctx.backend.settings), client)
    except ImageStudioError as exc:  # refused before it queued
        yield *skip, error_html(error_message(ctx, exc, lang)), *back
        return
    ctx.active.add(session, controls.jobs_page, job_id)
    waited = False
    try:
        yield *skip, note_html(ctx.t("enhance.running", lang)), *waiting
        waited = True
        try:
            result = wait_enhance(ctx, job_id)
        except JobCancelled:
            yield *skip, note_html(ctx.t("enhance.cancelled", lang)), *back
            return
        except (ImageStudioError, RuntimeError) as exc:  # failed: said in place
            yield *skip, error_html(error_message(ctx, exc, lang)), *back
            return
    finally:
        ctx.active.discard(session, job_id)
        if not waited:  # the page went away before following it: nobody would read the rewrite
            ctx.backend.cancel(job_id)
    if result.get("warning"):
        yield *skip, note_html(ctx.t("enhance.unusable", lang), "warn"), *back
        return
    # A second improvement keeps the words the user typed first, so Undo always goes back to them.
    first = state["original"] if state and state.get("improved") == text else result["original_prompt"]
    new_state = {"original": first, "improved": result["prompt"]}
    done = note_html(ctx.t("enhance.done", lang), "ok")
    if _random_weights(model_id):
        # The offline models' text encoders have random weights: what they write is no improvement.
        done = note_html(ctx.t("enhance.random", lang), "warn")
    yield result["prompt"], new_state, gr.Button(visible=True), done, *back


def _random_weights(model_id: str) -> bool:
    from imagestudio.registry import MODELS

    spec = MODELS.get(model_id)
    return spec is not None and spec.tiny


def cancel_improvement(ctx: UIContext, controls: EnhanceControls, session: str) -> None:
    """Cancel the improvement this browser tab is waiting for on this page (the queue says so to the
    waiting :func:`improve_steps`, which puts the page back)."""
    for job_id in ctx.active.of(session, controls.jobs_page):
        ctx.backend.cancel(job_id)


def wait_enhance(ctx: UIContext, job_id: str) -> dict[str, Any]:
    """The rewrite of the queued ``enhance`` job ``job_id``, once it is done.

    Raises :class:`JobCancelled` when it was cancelled, and the job's own error when it failed.
    Stopping before it ends (the page went away) cancels it: nobody would read the rewrite.
    """
    snapshots = ctx.backend.watch(job_id)
    snap = None
    try:
        snap = next(snap for snap in snapshots if snap.finished)
    finally:
        snapshots.close()
        if snap is None:
            ctx.backend.cancel(job_id)
    if snap.state is JobState.CANCELLED:
        raise JobCancelled(f"the rewrite job {job_id} was cancelled")
    if snap.state is not JobState.DONE:
        raise snap.error or RuntimeError(f"the rewrite job ended {snap.state.value}")
    result = ctx.backend.enhanced(job_id)
    if result is None:
        raise RuntimeError("the rewrite job finished without a result")
    return result
