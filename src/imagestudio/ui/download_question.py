"""Ask before a download: the real models are 7–58 GB, so a Download button only asks.

The question says what the download fetches (model, weights, size), where it goes and the room there,
and whether this machine can run it (the doctor's plan, in the reader's language); the download starts
only from the question's own button, which says "anyway" when the plan says the machine cannot.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from imagestudio.ui.common import UIContext


@dataclass
class DownloadQuestion:
    """The hidden question block under a Download button (``<prefix>-ask`` …)."""

    box: Any
    text: Any
    yes: Any
    no: Any

    def hidden(self) -> Any:
        import gradio as gr

        return gr.Group(visible=False)


def build(ctx: UIContext, prefix: str) -> DownloadQuestion:
    import gradio as gr

    with gr.Group(visible=False, elem_id=f"{prefix}-ask", elem_classes="is-ask") as box:
        text = gr.HTML(elem_id=f"{prefix}-ask-text", padding=False)
        with gr.Row():
            yes = gr.Button(ctx.key("sys.download"), variant="primary", scale=0, min_width=240,
                            elem_id=f"{prefix}-ask-yes")  # fmt: skip
            no = gr.Button(ctx.key("ask.no"), scale=0, min_width=220, elem_id=f"{prefix}-ask-no")
    no.click(lambda: gr.Group(visible=False), None, box, queue=False)
    # The answer hides the question at once; the download's own handler (wired by the page) follows.
    yes.click(lambda: gr.Group(visible=False), None, box, queue=False)
    return DownloadQuestion(box=box, text=text, yes=yes, no=no)


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk that holds ``folder`` (or would, once made); None when it cannot be told."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def asked(
    ctx: UIContext,
    lang: str,
    *,
    title: str,
    weights: str,
    size_bytes: int | None,
    plan: dict[str, Any] | None,
) -> tuple[Any, str, Any]:
    """The updates that show the question: (its block, its text, its Download button)."""
    import gradio as gr

    from imagestudio.ui.first_run import verdict
    from imagestudio.ui.system_page import size_text

    t = ctx.t
    size = size_text(ctx, lang, size_bytes) if size_bytes else "?"
    folder = ctx.backend.settings.models_dir
    free = free_bytes(Path(folder))
    parts = [f"<p><b>{escape(t('ask.title', lang, model=title, weights=weights, size=size))}</b></p>"]
    if free is not None:
        key = "ask.no_room" if size_bytes and free < size_bytes else "ask.room"
        parts.append(
            f'<p data-room="{"no" if key == "ask.no_room" else "yes"}">'
            f"{escape(t(key, lang, folder=str(folder), free=size_text(ctx, lang, free)))}</p>"
        )
    words = verdict(ctx, plan, lang)
    # The doctor's "fail" for a plan: this machine cannot run it as it is (no room on the card, or
    # not enough RAM without a GPU); a "warn" runs, slowly.
    cannot = (plan or {}).get("status") == "fail"
    if words:
        line = t("ask.cannot_run" if cannot else "first.verdict", lang, plan=words)
        parts.append(f'<p class="is-verdict" data-runs="{"no" if cannot else "yes"}">{escape(line)}</p>')
    html = f'<div class="is-banner is-question" role="alertdialog">{"".join(parts)}</div>'
    label = t("ask.yes_anyway" if cannot else "ask.yes", lang, size=size)
    return gr.Group(visible=True), html, gr.Button(value=label)


def variant_plan(ctx: UIContext, model_id: str, weights: str) -> tuple[int | None, dict[str, Any] | None]:
    """(download bytes, plan check) of ``weights`` of ``model_id`` on this machine, from the doctor (the
    System page's checks come from it too); (None, None) when it cannot say."""
    import logging

    from imagestudio.doctor import plan_check, run_doctor

    try:
        entry = run_doctor(ctx.backend.settings, [model_id]).models[0]
        row = next(r for r in entry.variants if r.variant.name == weights)
        check = plan_check(row.plan)
    except Exception:  # the question is still asked, only without the verdict
        logging.getLogger(__name__).warning("could not plan %s %s", model_id, weights, exc_info=True)
        return None, None
    found = {"code": check.code, "details": dict(check.details), "name": check.name, "status": check.status}
    return row.download_bytes, {**found, "message": check.message}
