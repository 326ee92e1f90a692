"""What every page shares: the context object, running jobs per browser tab, following a job, errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ImageStudioError, UserError
from imagestudio.jobs.model import JobState
from imagestudio.ui.session_jobs import SessionJobs
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import Texts, language
from imagestudio.ui.widgets import Progress, error_html, note_html, progress_html

if TYPE_CHECKING:
    import gradio as gr
    from PIL.Image import Image

    from imagestudio.jobs.model import JobRequest
    from imagestudio.ui.backend import JobSnapshot, StudioBackend

log = logging.getLogger(__name__)


@dataclass
class UIContext:
    backend: StudioBackend
    texts: Texts
    #: The jobs each browser has queued (its queue panel and Cancel buttons act on them).
    active: SessionJobs = field(default_factory=SessionJobs)
    #: The queue panel's refresh timer (set by the app before the pages are built): it runs only while
    #: the browser has jobs, since each of its ticks makes Gradio's page re-read every component that
    #: ever took part in an event (the start-picture editor's whole picture among them).
    queue_timer: Any = None

    def queue_updates(self, *, active: bool) -> dict[Any, Any]:
        """Switch the queue panel's refresh on (jobs were queued) or off; nothing without a panel."""
        import gradio as gr

        return {} if self.queue_timer is None else {self.queue_timer: gr.Timer(active=active)}

    def key(self, name: str) -> Any:
        """A translation key for a static label (translated in the browser)."""
        from gradio.i18n import I18nData

        if not self.texts.has(name):
            raise KeyError(f"missing translation key {name!r}")
        return I18nData(name)

    def t(self, name: str, lang: str | None, /, **params: Any) -> str:
        return self.texts.t(name, lang, **params)


def session_of(request: gr.Request | None) -> str:
    """Whom a page's jobs belong to: the browser's owner cookie (see :mod:`imagestudio.ui.owner`), so a
    reloaded page finds its jobs again; else (a script without the cookie) Gradio's session."""
    from imagestudio.ui.owner import owner_cookie

    headers = getattr(request, "headers", None)
    owner = owner_cookie(headers.get("cookie") if headers is not None else None)
    if owner is not None:
        return f"owner:{owner}"
    return getattr(request, "session_hash", None) or "anonymous"


def client_of(request: gr.Request | None) -> str | None:
    """The client a page's jobs belong to, for ``server.max_queued_per_client``: the address of the
    connection the event came in on.

    The same value the HTTP API tags its requests with (:func:`imagestudio.api.clients.client_address`
    reads the ASGI scope's ``client``; Gradio's request reports that scope's ``client.host``), so one
    browser's page jobs and its API calls count against one share. None when Gradio has no address
    (then only the queue's size bounds the job).
    """
    host = getattr(getattr(request, "client", None), "host", None)
    return str(host) if host else None


def submit_all(ctx: UIContext, requests: Iterable[JobRequest], client: str | None) -> list[str]:
    """Queue each request for ``client``; if one is refused (the queue or the client's share is full),
    cancel those already queued and raise the refusal.

    All or none: the page follows only the jobs of a submission that went through, so a half-queued one
    would run unseen, out of reach of the page's Cancel and queue panel.
    """
    queued: list[str] = []
    try:
        for request in requests:
            queued.append(ctx.backend.submit(request, client))
    except UserError:
        for job_id in queued:
            ctx.backend.cancel(job_id)
        raise
    return queued


def error_message(ctx: UIContext, exc: BaseException, lang: str | None) -> str:
    """A readable one-liner for any error: translated for user errors, generic for bugs (logged)."""
    if isinstance(exc, UserError) or (isinstance(exc, ImageStudioError) and exc.code):
        return ctx.texts.error(exc, lang)
    return ctx.t("err.generic", lang)


def routed_errors(
    ctx: UIContext,
    exc: BaseException | None,
    lang: str | None,
    slots: Mapping[str, Any],
    fallback: Any,
) -> dict[Any, str]:
    """An update for every error slot of a page: the message under the control at fault, others cleared.

    ``slots`` maps a request field (``UserError.param``) to the HTML component under that control;
    errors about other fields land in ``fallback`` (next to the page's main button).
    """
    updates: dict[Any, str] = dict.fromkeys({*slots.values(), fallback}, "")
    if exc is not None:
        target = slots.get(getattr(exc, "param", None) or "", fallback)
        updates[target] = error_html(error_message(ctx, exc, lang))
    return updates


@dataclass(frozen=True)
class JobUpdate:
    """One step of following a job: the snapshot, its progress bar, and a new preview if there is one."""

    snapshot: JobSnapshot
    progress: str
    preview: Image | None = None
    preview_changed: bool = False


def progress_of(
    ctx: UIContext, snap: JobSnapshot, lang: str, message: str = "", *, cancelling: bool = False
) -> str:
    """The progress bar of a job; one whose Cancel was pressed says "Cancelling…" until it ends (the
    pipeline stops at its next step)."""
    state = snap.state.value
    if cancelling and not snap.finished:
        state = "cancelling"
    if state == "done":
        message = message or ctx.t("status.done", lang, seconds=f"{snap.elapsed_s:.1f}")
    elif state == "cancelled":
        message = ctx.t("status.cancelled", lang)
    elif state == "failed":
        message = ctx.t("status.failed", lang, message=error_message(ctx, snap.error or Exception(), lang))
    progress = Progress(state, snap.progress, ahead=snap.ahead, message=message, loading=snap.loading)
    return progress_html(ctx.texts, lang, progress)


def follow(ctx: UIContext, job_id: str, lang: str) -> Iterator[JobUpdate]:
    """Yield an update whenever the job's progress or preview changes, until it finishes.

    Waits on the queue's events (see :meth:`StudioBackend.watch`), not on a timer. Closing the
    generator (the page was reloaded or closed) only stops following: the job lives on the server and
    runs to its end (its pictures land in History; the queue panel lists it on the browser's return).
    """
    lang = language(lang)
    last_progress: str | None = None
    last_preview: Image | None = None
    snapshots = ctx.backend.watch(job_id)
    try:
        for snap in snapshots:
            progress = progress_of(ctx, snap, lang, cancelling=ctx.active.cancelling(job_id))
            preview_changed = snap.preview is not None and snap.preview is not last_preview
            if progress != last_progress or preview_changed or snap.finished:
                last_progress, last_preview = progress, snap.preview
                yield JobUpdate(snap, progress, snap.preview, preview_changed)
            if snap.finished:
                return
    finally:
        snapshots.close()  # unsubscribes from the job's events


#: Client side, at the Cancel click: the page's progress bar switches to its "Cancelling…" caption
#: (carried in the bar's ``data-cancelling``, already in the page's language).
CANCELLING_JS = """() => {
  const bar = document.querySelector('#PREFIX .is-progress');
  if (bar && bar.dataset.cancelling && !['done', 'failed', 'cancelled'].includes(bar.dataset.state)) {
    bar.dataset.state = 'cancelling';
    const text = bar.querySelector('.is-progress-text');
    if (text) text.textContent = bar.dataset.cancelling;
  }
}"""


@dataclass
class JobPanel:
    """The part the Generate and Edit pages share: buttons, progress, preview, results, errors."""

    page: str
    run: Any
    cancel: Any
    progress: Any
    preview: Any
    gallery: Any
    info: Any
    last_seed: Any
    seed: Any
    #: Request field → the error line under its control.
    errors: dict[str, Any]
    form_error: Any
    #: More components a page's job body updates (e.g. the Edit page's before/after comparison).
    extra_outputs: list[Any] = field(default_factory=list)
    #: Buttons that act on the results (Edit this / Vary this): disabled whenever the results go.
    #: They come back when the gallery gets pictures again (its change event, see ui/chain.py): a
    #: gallery emptied by an update sends no change event to hang the disabling on.
    needs_result: list[Any] = field(default_factory=list)

    def cleared(self) -> dict[Any, Any]:
        """Updates that take the previous job's line, pictures and preview off the page."""
        import gradio as gr

        return {
            self.progress: "",
            self.info: "",
            self.preview: gr.Image(value=None, visible=False),
            self.gallery: gr.Gallery(value=None, visible=True),
            **{button: gr.Button(interactive=False) for button in self.needs_result},
        }

    def outputs(self) -> list[Any]:
        slots = list(dict.fromkeys([*self.errors.values(), self.form_error]))
        fixed = [self.run, self.cancel, self.progress, self.preview, self.gallery, self.info, self.last_seed]
        return [*fixed, self.seed, *slots, *self.extra_outputs, *self.needs_result]


def run_job(
    ctx: UIContext,
    panel: JobPanel,
    submit: Callable[[], str | list[str]],
    lang: str,
    seed_mode: str,
    request: Any,
    on_results: Callable[[dict[Any, Any], list[Any]], None] | None = None,
) -> Iterator[dict[Any, Any]]:
    """The body of a Generate/Edit event: validate and submit, then stream the jobs until they end.

    ``submit`` builds the request(s), resolves them (all checks happen there) and queues them,
    returning the job id or ids (one per prompt line); a UserError it raises is shown under the
    control at fault and nothing runs. The run button stays enabled: pressing it again while jobs
    run queues more (each press is its own event, following its own jobs). ``on_results`` may add to
    each update, given the pictures this event has made so far (the Edit page's before/after).
    """
    import gradio as gr

    lang = language(lang)
    session = session_of(request)
    try:
        submitted = submit()
    except UserError as exc:
        # Nothing ran: the previous job's "Done" line and pictures would read as this request's result.
        yield {**routed_errors(ctx, exc, lang, panel.errors, panel.form_error), **panel.cleared()}
        return

    job_ids = [submitted] if isinstance(submitted, str) else list(submitted)
    for job_id in job_ids:
        ctx.active.add(session, panel.page, job_id)
    yield {
        **ctx.queue_updates(active=True),
        panel.cancel: gr.Button(interactive=True),
        **panel.cleared(),
        panel.progress: progress_html(ctx.texts, lang, Progress("queued")),
        # The live preview takes the results' place (same box) until the job ends: no layout shift.
        panel.preview: gr.Image(value=None, visible=True),
        panel.gallery: gr.Gallery(value=None, visible=False),
        **routed_errors(ctx, None, lang, panel.errors, panel.form_error),
    }
    results: list[Any] = []
    try:
        for job_id in job_ids:
            for update in follow(ctx, job_id, lang):
                out = _job_update(ctx, panel, update, results, lang, seed_mode)
                if on_results is not None:
                    on_results(out, results)
                if update.snapshot.finished:
                    ctx.active.discard(session, job_id)
                    # The pictures (this event's so far) take the live preview's place again.
                    out[panel.preview] = gr.Image(visible=False)
                    shown = out.get(panel.gallery)
                    out[panel.gallery] = (
                        gr.Gallery(value=shown, visible=True)
                        if shown is not None
                        else gr.Gallery(visible=True)
                    )
                    if not ctx.active.of(session, panel.page):
                        # Nothing else of this tab's is waiting on this page.
                        out[panel.cancel] = gr.Button(interactive=False)
                elif update.preview_changed:
                    # The preview is drawn in the results' box while a job runs: no layout shift.
                    out[panel.preview] = gr.Image(value=update.preview, visible=True)
                    out[panel.gallery] = gr.Gallery(visible=False)
                yield out
    except UserError as exc:
        yield {
            panel.cancel: gr.Button(interactive=False),
            panel.form_error: error_html(error_message(ctx, exc, lang)),
        }
    # Left early (the page was reloaded or closed): the jobs stay queued and keep running; the queue
    # panel lists them on the browser's return, with its "Cancel all" for work no longer wanted.


def _job_update(
    ctx: UIContext, panel: JobPanel, update: JobUpdate, results: list[Any], lang: str, seed_mode: str
) -> dict[Any, Any]:
    """The page's update for one step of one job; ``results`` collects the event's images so far."""
    snap = update.snapshot
    out: dict[Any, Any] = {panel.progress: update.progress}
    if update.preview_changed:
        out[panel.preview] = update.preview
    if snap.state is JobState.DONE and snap.results:
        results.extend(snap.results)
        first = snap.results[0].seed
        names = ", ".join(img.path.name for img in snap.results)
        out.update(
            {
                panel.gallery: [
                    (str(img.path), ctx.t("status.seed_caption", lang, seed=img.seed)) for img in results
                ],
                panel.last_seed: first,
                panel.info: note_html(
                    ctx.t("status.done_seed", lang, seconds=f"{snap.elapsed_s:.1f}", seed=first)
                    + " "
                    + ctx.t("status.saved", lang, path=names),
                    "ok",
                )
                + noise_note(ctx, snap.model, lang),
            }
        )
        if seed_mode == "random":
            out[panel.seed] = first
    elif snap.state is JobState.FAILED and snap.error is not None:
        out.update(routed_errors(ctx, snap.error, lang, panel.errors, panel.form_error))
    return out


def noise_note(ctx: UIContext, model_id: str | None, lang: str) -> str:
    """Beside an offline model's result: its random weights draw noise, and that is expected."""
    from imagestudio.registry import MODELS

    spec = MODELS.get(model_id or "")
    if spec is None or not spec.tiny:
        return ""
    return note_html(ctx.t("status.noise_expected", lang), "warn").replace("<div ", '<div data-noise="1" ', 1)


def clear_on_input(pairs: list[tuple[Any, Any]]) -> None:
    """Each control's error line disappears as soon as that control's value changes.

    A client-side event (no round trip per keystroke). A refused job's reply never changes a field, so
    the line it has just shown stays until the user edits the field at fault.
    """
    for control, error_slot in pairs:
        control.change(None, None, error_slot, js="() => ''", queue=False, show_progress="hidden")


def wire_job_panel(
    ctx: UIContext,
    panel: JobPanel,
    triggers: list[Any],
    inputs: list[Any],
    body: Any,
    *,
    name: str | None = None,
) -> None:
    """Attach ``body`` (a generator function of the input values and ``request``) to the triggers, and
    the Cancel button to the job this browser tab is following on this page.

    ``name``: a second kind of job followed by the same panel (Upscale) names its events itself; its
    triggers share the panel's Cancel, wired once by the panel's own jobs."""
    import gradio as gr

    # The request comes first: Gradio hands special arguments only to positional parameters.
    def run(request: Any, *values: Any) -> Iterator[dict[Any, Any]]:
        yield from body(*values, request=request)

    def cancel(request: Any) -> None:
        # Everything this browser queued on this page (single jobs are cancelled from the queue panel).
        for job_id in ctx.active.of(session_of(request), panel.page):
            ctx.active.mark_cancelling(job_id)
            ctx.backend.cancel(job_id)

    # Gradio hands the request to parameters *annotated* gr.Request; this module's annotations are
    # strings (postponed evaluation), so the real class is put in place before registering.
    run.__annotations__["request"] = gr.Request
    cancel.__annotations__["request"] = gr.Request

    for index, trigger in enumerate(triggers):
        # concurrency_limit=None: every session's event waits on the studio's own queue, which
        # serialises the GPU work; Gradio's queue would otherwise hold a second user's job out of sight.
        trigger(
            run,
            inputs,
            panel.outputs() + ([ctx.queue_timer] if ctx.queue_timer is not None else []),
            js=lang_js(len(inputs)),
            concurrency_limit=None,
            show_progress="hidden",
            # Pressing Generate again while a job runs queues another job.
            trigger_mode="multiple",
            # A stable name per page ("generate", "edit") instead of Gradio's run, run_1, … by order.
            api_name=(name or panel.page) if index == 0 else f"{name or panel.page}_{index}",
            # The form's widgets in order are no interface for a script: "Use via API" lists the named
            # endpoints (ui/client_api.py); this one stays callable for the page itself.
            api_visibility="undocumented",
        )
    if name is None:
        # The bar says "Cancelling…" at the click, before the server has answered (the page script, see
        # CANCELLING_JS); the job's next update says it too, until the job has stopped.
        at_click = CANCELLING_JS.replace("PREFIX", panel.progress.elem_id)
        panel.cancel.click(cancel, None, None, js=at_click, queue=False)


def reuse_seed(ctx: UIContext, last: int | None, lang: str) -> tuple[Any, Any, str]:
    """ "Reuse last seed": switch the seed to fixed and fill in the seed the page's last job used; with
    no job run yet on the page, say so under the button instead of doing nothing."""
    import gradio as gr

    if last is None:
        return gr.skip(), gr.skip(), note_html(ctx.t("gen.no_seed_to_reuse", language(lang)), "warn")
    return gr.Radio(value="fixed"), gr.Number(value=last, visible=True), ""


def seed_row(ctx: UIContext, prefix: str, *, info: bool) -> tuple[Any, Any, Any, Any]:
    """The seed controls both job pages share: random/fixed, the seed box, "Reuse last seed", and the
    line under them that answers "Reuse last seed" when there is nothing to reuse.

    Elements are ``<prefix>-seed-mode``, ``<prefix>-seed``, ``<prefix>-reuse-seed`` and
    ``<prefix>-seed-note``; call inside a Blocks context, and :func:`wire_seed` once the page's job
    panel exists.
    """
    import gradio as gr

    key = ctx.key
    with gr.Row(equal_height=True):
        mode = gr.Radio(
            [(key("gen.seed_random"), "random"), (key("gen.seed_fixed"), "fixed")],
            value="random",
            label=key("gen.seed_mode"),
            elem_id=f"{prefix}-seed-mode",
        )
        seed = gr.Number(
            label=key("gen.seed"), info=key("gen.seed_info") if info else None, value=None, precision=0,
            visible=False, elem_id=f"{prefix}-seed",
        )  # fmt: skip
        reuse = gr.Button(
            key("gen.reuse_seed"), size="sm", scale=0, min_width=150, elem_id=f"{prefix}-reuse-seed"
        )
    return mode, seed, reuse, slot(f"{prefix}-seed-note")


def wire_seed(ctx: UIContext, mode: Any, seed: Any, reuse: Any, last_seed: Any, note: Any, lang: Any) -> None:
    import gradio as gr

    # ``.input``: only the user's own switch to "fixed" may draw a new seed. "Use these settings" sets the
    # mode and the recorded seed together; a ``.change`` handler read the seed box before it had the
    # recorded value (on a tab not opened yet) and drew a random one over it.
    mode.input(seed_mode_changed, [mode, seed], seed, queue=False)
    mode.change(lambda m: gr.Number(visible=m == "fixed"), mode, seed, queue=False)
    # The page's language last: lang_js fills in the last input.
    reuse.click(
        lambda last, page_lang: reuse_seed(ctx, last, page_lang),
        [last_seed, lang],
        [mode, seed, note],
        js=lang_js(2),
        queue=False,
    )


def seed_mode_changed(mode: str, seed: float | None) -> Any:
    """The seed box shows only for a fixed seed; switching to fixed with an empty box fills in a new seed.

    A random seed is drawn per job, so in random mode there is no number to show (an empty number box
    would read as seed 0); the seed a job used is in its result line and "Reuse last seed" brings it back.
    """
    import gradio as gr

    from imagestudio.job_requests import random_seed

    if mode != "fixed":
        return gr.Number(visible=False)
    return gr.Number(visible=True, value=random_seed() if seed is None else seed)


def slot(elem_id: str) -> Any:
    """An HTML area the page fills while it runs (an error line, a progress bar, a status note).

    Empty slots take no room (the page's CSS hides ``.is-slot:empty`` blocks), so error lines under
    every control cost nothing until one has something to say.
    """
    import gradio as gr

    return gr.HTML(elem_id=elem_id, elem_classes="is-slot", padding=False, js_on_load=None)
