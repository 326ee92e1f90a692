"""The System page: device, memory, the loaded model and its memory plan, checks, models, Unload."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from imagestudio.ui.common import UIContext, error_message, slot
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import language
from imagestudio.ui.widgets import bar_html, error_html, note_html, table_html

GB = 1024**3


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
    lang: Any


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
    return SystemPage(
        refresh=refresh,
        device=device,
        memory=memory,
        loaded=loaded,
        checks=checks,
        models=models,
        unload=unload,
        status=status,
        lang=gr.Textbox(visible=False, elem_id="sys-lang"),
    )


def wire(ctx: UIContext, page: SystemPage, tab: Any) -> None:
    panels = [page.device, page.memory, page.loaded, page.checks, page.models]

    def show(lang: str) -> tuple[str, ...]:
        return render(ctx, ctx.backend.system(), language(lang))

    for trigger in (page.refresh.click, tab.select):
        trigger(show, [page.lang], panels, js=lang_js(1), queue=False)

    def unload(lang: str) -> tuple[str, ...]:
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


def _gb(value: float | None) -> str:
    return "—" if value is None else f"{value / GB:.1f}"


def render(ctx: UIContext, info: dict[str, Any], lang: str) -> tuple[str, str, str, str, str]:
    """(device, memory, loaded model + plan, checks, models) as HTML for ``info`` from the backend."""
    t = ctx.t
    accelerator = info.get("accelerator")
    device_rows = [(t("sys.device", lang), str(info.get("device", "—")))]
    if accelerator:
        device_rows.append(("GPU", str(accelerator.get("name", "—"))))
    device = table_html(device_rows) + ("" if accelerator else note_html(t("sys.no_gpu", lang), "warn"))

    bars = []
    if accelerator and accelerator.get("total_bytes"):
        total = accelerator["total_bytes"]
        used = total - accelerator.get("free_bytes", 0)
        bars.append(
            bar_html(
                t("sys.vram", lang), used, total, t("sys.used_of", lang, used=_gb(used), total=_gb(total))
            )
        )
    ram = info.get("ram") or {}
    if ram.get("total_bytes"):
        total = ram["total_bytes"]
        used = total - ram.get("available_bytes", 0)
        bars.append(
            bar_html(
                t("sys.ram", lang), used, total, t("sys.used_of", lang, used=_gb(used), total=_gb(total))
            )
        )
    memory = "".join(bars)

    resident = info.get("loaded_model")
    if resident:
        rows = [(key, str(value)) for key, value in resident.items() if value is not None]
        loaded = table_html(rows)
    else:
        loaded = note_html(t("sys.none_loaded", lang))
    plan = info.get("plan")
    if plan:
        loaded += f"<h4>{escape(t('sys.plan', lang))}</h4>" + table_html(
            [(str(k), str(v)) for k, v in plan.items() if not isinstance(v, (dict, list))]
        )

    check_rows = info.get("checks")
    if check_rows is None:
        checks = note_html(t("sys.unavailable", lang))
    else:
        marks = {"ok": "✅", "warn": "⚠️", "fail": "❌"}
        checks = table_html(
            [
                (marks.get(str(c.get("status")), "•"), f"{c.get('name', '')}: {c.get('message', '')}")
                for c in check_rows
            ],
            "is-table is-checks",
        )

    states = {
        "present": t("sys.model_present", lang),
        "missing": t("sys.model_missing", lang),
        "tiny": t("sys.model_tiny", lang),
    }
    model_rows = [
        (str(m.get("title") or m.get("id")), states.get(str(m.get("state")), str(m.get("state", "—"))))
        for m in info.get("models", [])
    ]
    models = table_html(model_rows)
    return device, memory, loaded, checks, models
