"""The first-run banner of the Generate and Edit pages: the real model is not here yet.

On a fresh install only the offline tiny models can run. The page then opens on the tiny model (so the
first click makes a picture) and says, above the form, which real model to fetch, how big it is, how it
will run on this machine (the doctor's plan, before a byte is downloaded), and that the offline model
draws noise. A Download button starts the same background download as the System page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from imagestudio.errors import UserError
from imagestudio.ui import download_question
from imagestudio.ui.common import UIContext, error_message, slot
from imagestudio.ui.style import lang_js

if TYPE_CHECKING:
    from imagestudio.config import Settings
from imagestudio.ui.texts import language
from imagestudio.ui.widgets import error_html, note_html

log = logging.getLogger(__name__)

#: How often the banner redraws a running download.
POLL_S = 0.5


@dataclass
class FirstRunBanner:
    """The banner of one page; ``model_id`` is the real model it offers to download."""

    prefix: str
    model_id: str
    box: Any
    text: Any
    download: Any
    status: Any
    lang: Any
    #: The doctor's plan check for the model on this machine (code + details; None: not known).
    plan: dict[str, Any] | None = None
    #: The weight variant the doctor recommends downloading for this machine, and its download size.
    weights: str = "bf16"
    download_bytes: int | None = None
    #: The question the Download button asks first (ui/download_question.py).
    ask: Any = None


def missing_default(settings: Settings, task: str) -> str | None:
    """The registry's default model for ``task`` when it is not on disk (None when it is)."""
    from imagestudio.models.locate import find_model_dir
    from imagestudio.registry import DEFAULT_EDIT_MODEL, DEFAULT_GENERATE_MODEL, MODELS

    model_id = DEFAULT_GENERATE_MODEL if task == "text-to-image" else DEFAULT_EDIT_MODEL
    try:
        present = find_model_dir(MODELS[model_id], settings, build_tiny=False) is not None
    except Exception:
        log.debug("could not look for %s", model_id, exc_info=True)
        present = False
    return None if present else model_id


def build(ctx: UIContext, prefix: str, model_id: str | None) -> FirstRunBanner | None:
    """The banner's components (call inside the page's Blocks); None when the real model is here."""
    import gradio as gr

    if model_id is None:
        return None
    with gr.Group(elem_classes="is-first-run") as box:
        text = gr.HTML(elem_id=f"{prefix}-first-run-text", padding=False)
        with gr.Row():
            download = gr.Button(
                ctx.key("first.download"), variant="primary", size="sm", scale=0, min_width=220,
                elem_id=f"{prefix}-first-run-download",
            )  # fmt: skip
        ask = download_question.build(ctx, f"{prefix}-first-run")
        status = slot(f"{prefix}-first-run-status")
    return FirstRunBanner(
        prefix=prefix,
        model_id=model_id,
        box=box,
        text=text,
        download=download,
        status=status,
        lang=gr.Textbox(visible=False),
        ask=ask,
        **recommendation(ctx, model_id),
    )


def recommendation(ctx: UIContext, model_id: str) -> dict[str, Any]:
    """The doctor's recommended weight variant for ``model_id`` on this machine, its download size, and
    the plan check of running it (as the System page's rows are): the banner's fields.

    Made once while the page is built, before the server takes jobs: sizing a model imports diffusers'
    lazy modules, and doing that while the worker loads a pipeline can see a half-imported module.
    """
    from imagestudio.doctor import plan_check, run_doctor

    try:
        entry = run_doctor(ctx.backend.settings, [model_id]).models[0]
        weights = entry.recommended or "bf16"
        row = next(r for r in entry.variants if r.variant.name == weights)
        plan = entry.best if entry.recommended and entry.best is not None else entry.plan
        check = plan_check(plan)
    except Exception:
        log.warning("could not plan %s for the first-run banner", model_id, exc_info=True)
        return {"plan": None}
    return {
        "plan": {
            "name": check.name,
            "message": check.message,
            "code": check.code,
            "details": dict(check.details),
            "status": check.status,
        },
        "weights": weights,
        "download_bytes": row.download_bytes,
    }


def verdict(ctx: UIContext, plan: dict[str, Any] | None, lang: str) -> str:
    """The plan in the reader's language ("" when it is not known)."""
    from imagestudio.ui.system_page import check_text

    return check_text(ctx, plan, lang)[1] if plan else ""


def banner_html(
    ctx: UIContext,
    model_id: str,
    lang: str,
    plan: dict[str, Any] | None = None,
    weights: str = "bf16",
    download_bytes: int | None = None,
) -> str:
    from imagestudio.registry import get_model
    from imagestudio.ui.system_page import size_text

    spec = get_model(model_id)
    tiny = next(m for m in _tiny_ids() if get_model(m).task == spec.task)
    t = ctx.t
    size = size_text(ctx, lang, download_bytes or spec.download_bytes)
    command = f"imagestudio models download {model_id}"
    if weights == "bf16":
        get = t("first.get", lang, model=spec.title, size=size)
    else:
        get = t("first.get_variant", lang, model=spec.title, size=size, weights=weights)
        command += f" --weights {weights}"
    parts = [
        f"<p><b>{escape(t('first.missing', lang, model=spec.title))}</b> "
        f"{escape(t('first.offline', lang, tiny=t(f'model.{tiny}', lang)))}</p>",
        f'<p>{escape(get)} <code data-weights="{escape(weights)}">{escape(command)}</code></p>',
    ]
    words = verdict(ctx, plan, lang)
    if words:
        parts.append(f'<p class="is-verdict">{escape(t("first.verdict", lang, plan=words))}</p>')
    return '<div class="is-banner" role="note">' + "".join(parts) + "</div>"


def _tiny_ids() -> list[str]:
    from imagestudio.registry import MODELS

    return [m for m, spec in MODELS.items() if spec.tiny]


def wire(ctx: UIContext, banners: list[FirstRunBanner | None], blocks: Any) -> None:
    """Fill the banners when the page opens (in its language) and attach their Download buttons.

    The plans were made when the page was built (see :func:`recommendation`); filling only translates.
    """
    shown = [b for b in banners if b is not None]
    if not shown:
        return

    def fill(lang: str) -> list[str]:
        lang = language(lang)
        return [banner_html(ctx, b.model_id, lang, b.plan, b.weights, b.download_bytes) for b in shown]

    blocks.load(
        fill, [shown[0].lang], [b.text for b in shown], js=lang_js(1), queue=False, show_progress="hidden"
    )
    for banner in shown:
        _wire_download(ctx, banner)


def _wire_download(ctx: UIContext, banner: FirstRunBanner) -> None:
    def download(lang: str) -> Iterator[tuple[Any, ...]]:
        yield from _download(ctx, banner.model_id, language(lang), banner.weights)

    def ask(lang: str) -> tuple[Any, ...]:
        from imagestudio.registry import get_model
        from imagestudio.ui.download_question import asked

        title = get_model(banner.model_id).title
        size = banner.download_bytes or get_model(banner.model_id).download_bytes
        lang = language(lang)
        return (*asked(ctx, lang, title=title, weights=banner.weights, size_bytes=size, plan=banner.plan), "")

    # The button only asks (size, room, whether this machine can run it); the question's button downloads.
    banner.download.click(
        ask, [banner.lang], [banner.ask.box, banner.ask.text, banner.ask.yes, banner.status], js=lang_js(1)
    )
    banner.ask.yes.click(
        download,
        [banner.lang],
        [banner.status, banner.download],
        js=lang_js(1),
        concurrency_limit=None,
        show_progress="hidden",
    )


def _download(ctx: UIContext, model_id: str, lang: str, weights: str = "bf16") -> Iterator[tuple[Any, ...]]:
    import gradio as gr

    from imagestudio.ui.system_page import _download_bar

    busy, idle = gr.Button(interactive=False), gr.Button(interactive=True)
    try:
        ctx.backend.start_download(model_id, weights)
    except UserError as exc:
        yield error_html(error_message(ctx, exc, lang)), idle
        return
    yield note_html(ctx.t("sys.download_starting", lang, model=model_id)), busy
    while True:
        state = ctx.backend.download_status(model_id) or {}
        if state.get("status", "running") != "running":
            break
        if state.get("progress"):
            yield _download_bar(ctx, lang, state["progress"]), busy
        time.sleep(POLL_S)
    status = state.get("status")
    if status == "done":
        yield note_html(ctx.t("first.done", lang, model=model_id), "ok"), idle
    elif status == "cancelled":
        yield note_html(ctx.t("sys.download_cancelled", lang), "warn"), idle
    else:
        reason = ctx.texts.coded(
            state.get("error_code"), state.get("error_details"), lang, state.get("error") or "?"
        )
        yield error_html(ctx.t("sys.download_failed", lang, message=reason)), idle
