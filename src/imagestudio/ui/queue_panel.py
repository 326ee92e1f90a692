"""The queue panel: this browser's waiting and running jobs (prompt, model, place), each with Cancel.

It floats over the pages' lower right corner (moving nothing on them) and refreshes itself about
once a second while the browser has jobs (also those queued before a reload: the queue lives on the
server). It lists only the jobs this browser submitted (see :mod:`imagestudio.ui.session_jobs` and
:mod:`imagestudio.ui.owner`), its Cancel buttons act only on those, and "Cancel all my jobs" on all of
them. No ``from __future__ import annotations``: Gradio reads handler annotations.
"""

from dataclasses import dataclass
from html import escape
from typing import Any

from imagestudio.jobs.model import JobState
from imagestudio.ui.backend import JobSnapshot
from imagestudio.ui.common import UIContext, session_of
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import language

REFRESH_S = 1.0
#: Clicks on a row's Cancel reach the server as this component's click event, with the job's id.
CLICK_JS = """
if (!element.__isQueue) {
  element.__isQueue = true;
  element.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-cancel]');
    if (!button) return;
    button.disabled = true;
    trigger('click', {job: button.dataset.cancel});
  });
}
"""
#: The panel floats over the page's lower right corner: appearing and growing in the page's flow, it
#: pushed every page down (and the button just pressed away from the pointer).
CSS = """
#is-queue { position: fixed; right: 1rem; bottom: 1rem; z-index: 50; width: min(30rem, calc(100vw - 2rem));
  margin: 0; }
.is-queue { border: 1px solid var(--border-color-primary); border-radius: 0.5rem; padding: 0.4rem 0.7rem;
  background: var(--background-fill-primary); box-shadow: 0 4px 18px rgba(0, 0, 0, 0.18);
  max-height: 40vh; overflow-y: auto; }
.is-queue-title { font-weight: 600; margin-bottom: 0.2rem; display: flex; gap: 0.6rem;
  align-items: baseline; }
.is-queue ol { margin: 0; padding-left: 1.4rem; }
.is-queue li { display: flex; gap: 0.6rem; align-items: baseline; padding: 0.15rem 0; flex-wrap: wrap; }
.is-queue-prompt { flex: 1 1 12rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.is-queue-state, .is-queue-model { font-variant-numeric: tabular-nums; opacity: 0.85; }
.is-queue button { padding: 0.1rem 0.6rem; border-radius: 0.3rem; border: 1px solid currentColor;
  background: transparent; color: var(--body-text-color); cursor: pointer; }
"""


@dataclass
class QueuePanel:
    html: Any
    timer: Any
    lang: Any


def build(ctx: UIContext) -> QueuePanel:
    """The panel (empty, so invisible, until this tab queues something) and its refresh timer."""
    import gradio as gr

    html = gr.HTML("", elem_id="is-queue", elem_classes="is-slot", padding=False, js_on_load=CLICK_JS)
    # Off until this browser has jobs (see UIContext.queue_timer); the page's load switches it on if jobs
    # queued before a reload are still there.
    timer = gr.Timer(REFRESH_S, active=False)
    return QueuePanel(html=html, timer=timer, lang=gr.Textbox(visible=False))


def wire(ctx: UIContext, panel: QueuePanel, blocks: Any) -> None:
    import gradio as gr

    def refresh(request: gr.Request, lang: str) -> tuple[str, Any]:
        session = session_of(request)
        html = render(ctx, session, language(lang))
        return html, gr.Timer(active=bool(html))

    def cancel(request: gr.Request, lang: str, event: gr.EventData) -> tuple[str, Any]:
        session = session_of(request)
        job_id = (getattr(event, "_data", None) or {}).get("job")
        chosen = ctx.active.of(session) if job_id == ALL else [job_id] if isinstance(job_id, str) else []
        for one in chosen:
            if ctx.active.owns(session, one):
                ctx.active.mark_cancelling(one)
                ctx.backend.cancel(one)
        return refresh(request, lang)

    outputs = [panel.html, panel.timer]
    panel.timer.tick(refresh, panel.lang, outputs, js=lang_js(1), queue=False, show_progress="hidden")
    panel.html.click(cancel, panel.lang, outputs, js=lang_js(1), queue=False, show_progress="hidden")
    blocks.load(refresh, panel.lang, outputs, js=lang_js(1), queue=False, show_progress="hidden")


#: The ``data-cancel`` of the panel's "Cancel all my jobs" button.
ALL = "all"


def pending_jobs(ctx: UIContext, session: str) -> list[JobSnapshot]:
    """The browser's unfinished jobs: the running one first, then the waiting ones in queue order.

    Jobs seen finished are forgotten here: no page may be following them any more (a reload).
    """
    snapshots = []
    for job_id in ctx.active.of(session):
        try:
            snap = ctx.backend.snapshot(job_id)
        except Exception:  # noqa: BLE001 - a job the queue forgot is simply not listed
            ctx.active.discard(session, job_id)
            continue
        if snap.finished:
            ctx.active.discard(session, job_id)
        else:
            snapshots.append(snap)
    return sorted(snapshots, key=lambda s: (s.state is not JobState.RUNNING, s.ahead or 0))


def render(ctx: UIContext, session: str, lang: str) -> str:
    jobs = pending_jobs(ctx, session)
    if not jobs:
        return ""
    rows = []
    cancel_word = escape(ctx.t("queue.cancel", lang))
    for snap in jobs:
        if ctx.active.cancelling(snap.id):
            state = ctx.t("status.cancelling", lang)
        elif snap.state is JobState.RUNNING and snap.progress is not None:
            state = ctx.t("queue.running", lang, step=snap.progress.step, steps=snap.progress.steps)
        elif snap.state is JobState.RUNNING:  # loading the model, before the first step
            state = ctx.t("queue.starting", lang)
        else:
            state = ctx.t("queue.waiting", lang, position=(snap.ahead or 0) + 1)
        prompt = " ".join((snap.prompt or "").split()) or "—"
        rows.append(
            f'<li data-job="{escape(snap.id)}" data-state="{escape(snap.state.value)}">'
            f'<span class="is-queue-state">{escape(state)}</span>'
            f'<span class="is-queue-model">{escape(snap.model or "")}</span>'
            f'<span class="is-queue-prompt" title="{escape(prompt)}">{escape(prompt)}</span>'
            f'<button type="button" data-cancel="{escape(snap.id)}">{cancel_word}</button>'
            "</li>"
        )
    title = ctx.t("queue.title", lang, count=len(jobs))
    cancel_all = escape(ctx.t("queue.cancel_all", lang))
    return (
        f'<div class="is-queue" data-count="{len(jobs)}"><div class="is-queue-title">{escape(title)}'
        f' <button type="button" class="is-queue-all" data-cancel="{ALL}">{cancel_all}</button></div>'
        f"<ol>{''.join(rows)}</ol></div>"
    )
