"""The System page: device, memory, the loaded model and its memory plan, checks, models, Unload, Download.

Each missing model and weight variant has its own Download button in the models table (an HTML table the
server draws). A button there hands its choice (``model`` or ``model:variant``) to one Gradio event: the
page script (:data:`ROW_DOWNLOAD_SCRIPT`) presses the hidden ``#sys-download`` button, whose pre-event
script reads the choice the row button left on it. So every row goes through the same handler and the
same guards: refused while a download runs (the hidden button is disabled then, and the row buttons with
it), a one-line error from the backend, progress and Cancel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from typing import Any

from imagestudio.errors import UserError
from imagestudio.jobs.model import JobProgress
from imagestudio.ui import download_question
from imagestudio.ui.common import UIContext, error_message, slot
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import NOT_NUMBERS, decimal, language
from imagestudio.ui.widgets import (
    Progress,
    bar_html,
    duration,
    error_html,
    note_html,
    progress_html,
    table_html,
)

GIB = 1024**3
#: How often a running download's bar is redrawn (its own progress events come every 0.1 s).
DOWNLOAD_POLL_S = 0.5

#: The row buttons' side: a click on an enabled ``.is-row-download`` leaves its choice on the hidden
#: ``#sys-download`` button and presses it, unless that button is disabled (a download runs). Installed on
#: ``document`` (Gradio redraws the table): see :mod:`imagestudio.ui.studio_js`.
ROW_DOWNLOAD_SCRIPT = """<script>
  document.addEventListener("click", (e) => {
    const row = e.target && e.target.closest && e.target.closest(".is-row-download");
    if (!row) return;
    e.preventDefault();
    const bridge = document.getElementById("sys-download");
    if (!bridge || bridge.disabled || row.disabled) return;
    bridge.dataset.choice = row.dataset.choice || "";
    bridge.click();
  }, true);
</script>"""
#: The hidden button's pre-event script: (choice, lang) ← the row's choice and the page's language.
DOWNLOAD_EVENT_JS = (
    "(...args) => [document.getElementById('sys-download')?.dataset.choice || '', "
    "document.documentElement.lang || navigator.language || 'en']"
)
#: Cancel's pre-event script: the model of the download the last row button started.
STOP_EVENT_JS = "(...args) => [document.getElementById('sys-download')?.dataset.choice || '']"
#: The hidden bridge stays in the page (Gradio leaves invisible components out of it) but is not shown;
#: row buttons look and act disabled while it is (a download runs).
ROW_DOWNLOAD_CSS = """
#sys-download { display: none !important; }
.is-row-download {
  cursor: pointer; white-space: nowrap; font-size: .85em; padding: 2px 10px; border-radius: 6px;
  border: 1px solid var(--button-secondary-border-color, #ccc);
  background: var(--button-secondary-background-fill, #eee);
  color: var(--button-secondary-text-color, inherit);
}
.is-row-download:hover { background: var(--button-secondary-background-fill-hover, #ddd); }
.is-row-download:disabled, .gradio-container:has(#sys-download:disabled) .is-row-download {
  opacity: .5; pointer-events: none; cursor: default;
}
"""


@dataclass
class SystemPage:
    refresh: Any
    device: Any
    memory: Any
    loaded: Any
    checks: Any
    models: Any
    unload: Any
    status: Any
    download_model: Any
    download: Any
    stop_download: Any
    download_status: Any
    lang: Any
    #: The question a Download press asks first (ui/download_question.py).
    ask: Any = None


def build(ctx: UIContext) -> SystemPage:
    import gradio as gr

    key = ctx.key
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            gr.Markdown("### " + key("sys.device"))
            device = slot("sys-device")
            gr.Markdown("### " + key("sys.memory"))
            memory = slot("sys-memory")
            gr.Markdown("### " + key("sys.loaded"))
            loaded = slot("sys-loaded")
            with gr.Row():
                unload = gr.Button(key("sys.unload"), variant="stop", elem_id="sys-unload")
                refresh = gr.Button(key("sys.refresh"), elem_id="sys-refresh")
            status = slot("sys-status")
        with gr.Column(scale=1):
            gr.Markdown("### " + key("sys.doctor"))
            checks = slot("sys-checks")
            gr.Markdown("### " + key("sys.models"))
            models = slot("sys-models")
            with gr.Row(equal_height=True):
                # The row buttons' choice (set by the pre-event script, never typed) and their one event.
                download_model = gr.Textbox(visible=False, elem_id="sys-download-model")
                download = gr.Button(key("sys.download"), elem_id="sys-download")
                stop_download = gr.Button(
                    key("sys.cancel_download"), variant="stop", scale=1, interactive=False, elem_id="sys-stop"
                )
            ask = download_question.build(ctx, "sys")
            download_status = slot("sys-download-status")
    return SystemPage(
        refresh=refresh,
        device=device,
        memory=memory,
        loaded=loaded,
        checks=checks,
        models=models,
        unload=unload,
        status=status,
        download_model=download_model,
        download=download,
        stop_download=stop_download,
        download_status=download_status,
        lang=gr.Textbox(visible=False, elem_id="sys-lang"),
        ask=ask,
    )


def wire(ctx: UIContext, page: SystemPage, tab: Any) -> None:

    panels = [page.device, page.memory, page.loaded, page.checks, page.models]

    def show(lang: str) -> tuple[Any, ...]:
        lang = language(lang)
        return render(ctx, ctx.backend.system(), lang)

    for trigger in (page.refresh.click, tab.select):
        trigger(show, [page.lang], panels, js=lang_js(1), queue=False)

    def unload(lang: str) -> tuple[Any, ...]:
        lang = language(lang)
        try:
            model_id = ctx.backend.unload()
        except Exception as exc:  # noqa: BLE001 - shown on the page; the page must stay usable
            return (*show(lang), error_html(error_message(ctx, exc, lang)))
        message = (
            ctx.t("sys.unloaded", lang, model=model_id) if model_id else ctx.t("sys.nothing_to_unload", lang)
        )
        return (*show(lang), note_html(message, "ok"))

    page.unload.click(unload, [page.lang], [*panels, page.status], js=lang_js(1))

    def download(choice: str | None, lang: str) -> Iterator[tuple[Any, ...]]:
        yield from _download(ctx, choice, language(lang), show)

    def ask(choice: str | None, lang: str) -> tuple[Any, ...]:
        return _ask(ctx, page, choice, language(lang))

    # A row's Download only asks (size, room, whether this machine can run it); the question's own
    # button downloads the same choice (still on the hidden bridge button).
    page.download.click(
        ask,
        [page.download_model, page.lang],
        [page.ask.box, page.ask.text, page.ask.yes, page.download_status],
        js=DOWNLOAD_EVENT_JS,
    )
    page.ask.yes.click(
        download,
        [page.download_model, page.lang],
        [page.download_status, page.download, page.stop_download, *panels],
        js=DOWNLOAD_EVENT_JS,
        concurrency_limit=None,
        show_progress="hidden",
    )
    page.stop_download.click(
        lambda choice: ctx.backend.cancel_download(split_choice(choice)[0]) and None,
        [page.download_model],
        None,
        js=STOP_EVENT_JS,
        queue=False,
    )


def _ask(ctx: UIContext, page: SystemPage, choice: str | None, lang: str) -> tuple[Any, ...]:
    import gradio as gr

    from imagestudio.registry import MODELS
    from imagestudio.ui.download_question import asked, variant_plan

    model_id, weights = split_choice(choice)
    if model_id not in MODELS:
        return page.ask.hidden(), "", gr.skip(), note_html(ctx.t("sys.nothing_to_download", lang))
    title = MODELS[model_id].title
    size, plan = variant_plan(ctx, model_id, weights)
    return (*asked(ctx, lang, title=title, weights=weights, size_bytes=size, plan=plan), "")


def split_choice(choice: str | None) -> tuple[str, str]:
    """A Download choice, ``model`` or ``model:variant``, as (model id, weights)."""
    model_id, _, weights = (choice or "").partition(":")
    return model_id, weights or "bf16"


def _download(ctx: UIContext, choice: str | None, lang: str, show: Any) -> Iterator[tuple[Any, ...]]:
    """Start a background download and draw its progress until it ends; the page's panels refresh then."""
    import gradio as gr

    busy = (gr.Button(interactive=False), gr.Button(interactive=True))
    idle = (gr.Button(interactive=True), gr.Button(interactive=False))
    keep = (gr.skip(),) * 5
    model_id, weights = split_choice(choice)
    if not model_id:
        yield (note_html(ctx.t("sys.nothing_to_download", lang)), *idle, *keep)
        return
    try:
        ctx.backend.start_download(model_id, weights)
    except UserError as exc:
        yield (error_html(error_message(ctx, exc, lang)), *idle, *keep)
        return
    yield (note_html(ctx.t("sys.download_starting", lang, model=model_id)), *busy, *keep)
    while True:
        state = ctx.backend.download_status(model_id) or {}
        if state.get("status", "running") != "running":
            break
        progress = state.get("progress")
        if progress:
            yield (_download_bar(ctx, lang, progress), *busy, *keep)
        time.sleep(DOWNLOAD_POLL_S)
    status = state.get("status")
    if status == "done":
        message = note_html(ctx.t("sys.download_done", lang, model=model_id), "ok")
    elif status == "cancelled":
        message = note_html(ctx.t("sys.download_cancelled", lang), "warn")
    else:
        reason = ctx.texts.coded(
            state.get("error_code"), state.get("error_details"), lang, state.get("error") or "?"
        )
        message = error_html(ctx.t("sys.download_failed", lang, message=reason))
    yield (message, *idle, *show(lang))


def size_text(ctx: UIContext, lang: str, size: float) -> str:
    """A size in decimal units with the unit in the reader's language (``1.2 МБ``)."""
    from imagestudio.models.units import human_bytes

    number, unit = human_bytes(size).split(" ")
    return f"{decimal(number, lang)} {ctx.t(f'unit.{unit.lower()}', lang)}"


def _download_bar(ctx: UIContext, lang: str, progress: dict[str, Any]) -> str:
    done, total = progress.get("done_bytes", 0), progress.get("total_bytes", 0)
    text = ctx.t(
        "sys.download_progress",
        lang,
        done=size_text(ctx, lang, done),
        total=size_text(ctx, lang, total),
        rate=size_text(ctx, lang, progress.get("rate") or 0),
    )
    eta = progress.get("eta")
    if eta is not None:
        text += " · " + ctx.t("status.eta", lang, eta=duration(ctx.texts, lang, eta))
    # The bar counts bytes as its steps; the caption above says sizes, rate and time left.
    steps = max(total, 1)
    bytes_done = JobProgress(1, 1, min(done, steps), steps, 0.0, None)
    return progress_html(ctx.texts, lang, Progress("download", bytes_done, message=text))


def _fields_table(ctx: UIContext, fields: dict[str, Any], lang: str) -> str:
    """Known fields with translated names and yes/no; unknown ones are left out (the API has them all)."""
    rows = []
    for name, value in fields.items():
        label = f"sys.k.{name}"
        if value is None or not ctx.texts.has(label):
            continue
        word = VALUE_WORDS.get(name, "").format(value)
        if isinstance(value, bool):
            shown = ctx.t("sys.yes" if value else "sys.no", lang)
        elif word and ctx.texts.has(word):
            shown = ctx.t(word, lang)
        else:
            shown = str(decimal(value, lang))
        rows.append((ctx.t(label, lang), shown))
    return table_html(rows)


#: Fields whose values are words with a translation (``full`` → "всё в видеопамяти"); others are names.
VALUE_WORDS = {
    "profile": "plan.profile.{}",
    "placement": "plan.profile.{}",
    "attention_backend": "attention.{}",
}


def plan_words(ctx: UIContext, plan: dict[str, Any], lang: str) -> str:
    """A memory plan in a few words of the reader's language (``MemoryPlan.describe`` in English)."""
    profile = "cpu" if plan.get("accelerator") == "cpu" else str(plan.get("profile"))
    parts = [ctx.t(f"plan.profile.{profile}", lang) if ctx.texts.has(f"plan.profile.{profile}") else profile]
    weights = plan.get("weights")
    if weights:
        parts.append(ctx.t("plan.weights", lang, weights=weights))
    if plan.get("pinned_on_the_fly"):
        parts.append(ctx.t("plan.pinned_on_the_fly", lang))
    if plan.get("vae_tiling"):
        parts.append(ctx.t("plan.vae_tiling", lang))
    attention = plan.get("attention")
    if attention and attention != "native":
        parts.append(ctx.t("plan.attention", lang, attention=attention))
    return ", ".join(parts)


def check_text(ctx: UIContext, row: dict[str, Any], lang: str) -> tuple[str, str]:
    """(name, message) of one doctor check in the reader's language, from its code and details.

    Config keys stay as they are (they are what the user edits); a row without a known code shows its
    English message rather than nothing.
    """
    code = str(row.get("code") or "")
    details = {k: str(v) for k, v in (row.get("details") or {}).items()}
    name = str(row.get("name", ""))
    name_key = f"doctor.name.{code.split('.')[0]}"
    if code and ctx.texts.has(name_key):
        name = ctx.t(name_key, lang, **details)
    if not (code and ctx.texts.has(f"doctor.{code}")):
        return name, str(row.get("message", ""))
    if code.startswith("plan."):
        details["plan"] = plan_words(ctx, details, lang)
    try:
        # Formatted here even without details, so a line missing its values is caught, not shown raw.
        values = {k: v if k in NOT_NUMBERS else decimal(v, lang) for k, v in details.items()}
        return name, ctx.t(f"doctor.{code}", lang).format(**values)
    except (KeyError, IndexError, ValueError):
        # Details that do not fit the translation (a check newer than its Russian line): the English
        # line rather than a System page that fails to draw.
        return name, str(row.get("message", ""))


def _checks_table(ctx: UIContext, rows: list[dict[str, Any]], lang: str) -> str:
    # Plain marks coloured by CSS: emoji fonts are not on every machine.
    marks = {"ok": "✓", "warn": "!", "fail": "✗"}
    cells = []
    for row in rows:
        status = str(row.get("status"))
        name, message = check_text(ctx, row, lang)
        cells.append(
            f'<tr data-status="{escape(status)}" data-code="{escape(str(row.get("code") or ""))}">'
            f'<td class="is-mark">{escape(marks.get(status, "•"))}</td>'
            f"<td><b>{escape(name)}</b>: {escape(message)}</td></tr>"
        )
    return f'<table class="is-table is-checks">{"".join(cells)}</table>'


def _gib(value: float | None) -> str:
    return "—" if value is None else f"{value / GIB:.1f}"


def render(ctx: UIContext, info: dict[str, Any], lang: str) -> tuple[Any, ...]:
    """(device, memory, loaded model + plan, checks, models) as HTML; the models table has a Download button
    on each row that can be fetched."""
    t = ctx.t
    accelerator = info.get("accelerator")
    device_rows = [(t("sys.device", lang), str(info.get("device", "—")))]
    if accelerator:
        device_rows.append((t("sys.gpu", lang), str(accelerator.get("name", "—"))))
    device = table_html(device_rows) + ("" if accelerator else note_html(t("sys.no_gpu", lang), "warn"))

    bars = []
    meters = [(accelerator, "sys.vram", "free_bytes"), (info.get("ram"), "sys.ram", "available_bytes")]
    for source, label, free_key in meters:
        if source and source.get("total_bytes"):
            total = source["total_bytes"]
            used = total - source.get(free_key, 0)
            caption = t("sys.used_of", lang, used=_gib(used), total=_gib(total))
            bars.append(bar_html(t(label, lang), used, total, caption))
    memory = "".join(bars)

    resident = info.get("loaded_model")
    loaded = _fields_table(ctx, resident, lang) if resident else note_html(t("sys.none_loaded", lang))
    plan = info.get("plan")
    if plan:
        plan = {**plan, "plan": plan_words(ctx, plan, lang)}
        loaded += f"<h4>{escape(t('sys.plan', lang))}</h4>" + _fields_table(ctx, plan, lang)

    check_rows = info.get("checks")
    checks = (
        note_html(t("sys.unavailable", lang)) if check_rows is None else _checks_table(ctx, check_rows, lang)
    )

    states = {name: t(f"sys.model_{name}", lang) for name in ("present", "partial", "missing", "tiny")}
    rows = []
    for model in info.get("models", []):
        state = str(model.get("state"))
        title = str(model.get("title") or model.get("id"))
        if ctx.texts.has(f"model.{model.get('id')}"):
            title = t(f"model.{model.get('id')}", lang)
        size = model.get("size_bytes") or model.get("download_bytes") or 0
        shown = (
            size_text(ctx, lang, size)
            if state in ("present", "partial")
            else f"~{size_text(ctx, lang, size)}"
            if size
            else "—"
        )
        can_fetch = state in ("missing", "partial")
        fetch = model.get("download_bytes") or 0
        button = row_download_button(ctx, lang, str(model.get("id")), fetch) if can_fetch else ""
        rows.append(
            f"<tr data-model='{escape(str(model.get('id')))}' data-state='{escape(state)}'>"
            f"<td>{escape(title)}</td>"
            f"<td>{escape(states.get(state, state))}</td><td>{escape(shown)}</td><td>{button}</td></tr>"
        )
        if state == "tiny":
            continue  # a tiny model's variants are built on first use
        for variant in model.get("variants") or []:
            name = str(variant.get("variant"))
            if name == "bf16":
                continue  # the model's own row above
            v_state = str(variant.get("state"))
            v_size = variant.get("download_bytes") or 0
            v_shown = "—" if v_state == "present" or not v_size else f"~{size_text(ctx, lang, v_size)}"
            quality = str(variant.get("quality") or "")
            if ctx.texts.has(f"quality.{quality}"):
                quality = ctx.t(f"quality.{quality}", lang)
            choice = f"{model.get('id')}:{name}"
            v_button = row_download_button(ctx, lang, choice, v_size) if v_state == "missing" else ""
            rows.append(
                f"<tr class='is-variant' data-variant-of='{escape(str(model.get('id')))}' "
                f"data-variant='{escape(name)}' data-state='{escape(v_state)}'>"
                f"<td>↳ <code>{escape(name)}</code> <small>{escape(quality)}</small></td>"
                f"<td>{escape(states.get(v_state, v_state))}</td><td>{escape(v_shown)}</td>"
                f"<td>{v_button}</td></tr>"
            )
    head = (
        "".join(f"<th>{escape(t(k, lang))}</th>" for k in ("sys.col_model", "sys.col_state", "sys.col_size"))
        + "<th></th>"
    )
    models = f'<table class="is-table is-models"><tr>{head}</tr>{"".join(rows)}</table>'
    models += workers_html(ctx, info.get("workers") or [], lang)
    return device, memory, loaded, checks, models


def row_download_button(ctx: UIContext, lang: str, choice: str, size: float) -> str:
    """A models-table row's Download button: the choice it starts (``model`` or ``model:variant``) and
    the size it fetches (an estimate before it starts, hence ``~``)."""
    label = ctx.t("sys.download", lang) + (f" (~{size_text(ctx, lang, size)})" if size else "")
    return (
        f"<button type='button' class='is-row-download' data-choice='{escape(choice)}'>"
        f"{escape(label)}</button>"
    )


def _can_run(plans: Any, upscalers: Any) -> str:
    """``✓ tiny-z-image: full, bf16 weights; ✗ qwen…: does not fit …; ✓ realesrgan-x4plus: needs …`` —
    each model and each upscaler with its plan on the box (upscale jobs go only where theirs runs)."""
    said = []
    for fit in (*plans, *upscalers):
        mark = "✓" if fit.get("fits") else "✗"
        said.append(f"{mark} {fit.get('model') or fit.get('upscaler')}: {fit.get('plan')}")
    return "; ".join(said) or "—"


def workers_html(ctx: UIContext, workers: list[dict[str, Any]], lang: str, now: float | None = None) -> str:
    """The cluster's workers (``cluster.backend: ray``): where each runs, what it holds and does, and
    when it last answered; nothing with the in-process queue."""
    import time

    if not workers:
        return ""
    t = ctx.t
    now = time.time() if now is None else now
    keys = ("sys.col_worker", "sys.col_host", "sys.col_gpu", "sys.col_model", "sys.col_job", "sys.col_done")
    columns = (*keys, "sys.col_answer", "sys.k.plan", "sys.col_can_run")
    head = "".join(f"<th>{escape(t(k, lang))}</th>" for k in columns)
    rows = []
    for worker in workers:
        answered = worker.get("last_answer_at")
        ago = t("sys.seconds_ago", lang, seconds=f"{max(0.0, now - answered):.0f}") if answered else "—"
        memory = worker.get("memory") or {}
        # A box planning for a simulated card (worker --simulate-vram) says so instead of its real device.
        card = worker.get("gpu") or (memory.get("name") if memory.get("simulated") else None)
        cells = (
            worker.get("name"),
            worker.get("address") or worker.get("host"),
            card or worker.get("device"),
            worker.get("model") or "—",
            worker.get("job") or "—",
            worker.get("jobs_done", 0),
            ago,
            worker.get("memory_plan") or "—",
            _can_run(worker.get("plans") or (), worker.get("upscalers") or ()),
        )
        row = "".join(f"<td>{escape(str(cell))}</td>" for cell in cells)
        rows.append(f"<tr data-worker='{escape(str(worker.get('name')))}'>{row}</tr>")
    title = escape(t("sys.workers", lang, count=len(workers)))
    return f'<h4>{title}</h4><table class="is-table is-workers"><tr>{head}</tr>{"".join(rows)}</table>'
