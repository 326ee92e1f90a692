"""The studio's pages as one Gradio Blocks app, mounted at "/" of the server's FastAPI app."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from imagestudio.ui.common import UIContext
from imagestudio.ui.style import CSS, LANGUAGE_SCRIPT
from imagestudio.ui.texts import Texts

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI

    from imagestudio.ui.backend import StudioBackend

TAB_IDS = ("generate", "edit", "history", "system")


def default_model(settings: Any, task: str) -> str:
    """The registry's default for ``task`` when it is here, else the first model of that task that is."""
    from imagestudio.engine.loader import find_model_dir
    from imagestudio.registry import DEFAULT_EDIT_MODEL, DEFAULT_GENERATE_MODEL, MODELS

    preferred = DEFAULT_GENERATE_MODEL if task == "text-to-image" else DEFAULT_EDIT_MODEL
    candidates = [preferred] + [m for m, spec in MODELS.items() if spec.task == task and m != preferred]
    for model_id in candidates:
        if find_model_dir(MODELS[model_id], settings, build_tiny=False) is not None:
            return model_id
    return preferred


def header_html(texts: Texts | None = None, logout: bool = False) -> str:
    """The title and the language links; with ``logout`` (a key guards the server) a *Log out* link.

    The link's words come in both languages and CSS shows the one matching ``<html lang>``, which
    Gradio keeps equal to the language on screen (also after a switch): this HTML is not translated.
    """
    logout_link = ""
    if logout and texts is not None:
        words = "".join(
            f'<span lang="{lang}">{escape(texts.t("login.logout", lang))}</span>' for lang in ("en", "ru")
        )
        logout_link = f'<a href="/logout" class="is-logout" id="is-logout">{words}</a>'
    return (
        '<div class="is-header"><div><h1>imagestudio</h1></div>'
        '<div class="is-lang" id="is-lang">'
        '<a href="?lang=en" hreflang="en" data-lang="en">English</a>'
        '<a href="?lang=ru" hreflang="ru" data-lang="ru">Русский</a>' + logout_link + "</div></div>"
    )


def _has_api_key(settings: Any) -> bool:
    server = getattr(settings, "server", None)
    return getattr(server, "api_key", None) is not None


def build_blocks(ctx: UIContext) -> gr.Blocks:
    import gradio as gr

    from imagestudio.ui import chain, edit_page, generate_page, history_page, queue_panel, system_page

    settings = ctx.backend.settings
    with gr.Blocks(title="imagestudio", analytics_enabled=False) as blocks:
        gr.HTML(header_html(ctx.texts, logout=_has_api_key(settings)), elem_id="is-header-bar")
        gr.Markdown(ctx.key("app.subtitle"), elem_id="is-subtitle")
        chain.scripts()
        queue = queue_panel.build(ctx)
        with gr.Tabs(selected="generate", elem_id="is-tabs") as tabs:
            with gr.Tab(ctx.key("tab.generate"), id="generate", elem_id="tab-generate"):
                generate = generate_page.build(ctx, default_model(settings, "text-to-image"))
            with gr.Tab(ctx.key("tab.edit"), id="edit", elem_id="tab-edit"):
                edit = edit_page.build(ctx, default_model(settings, "edit"))
            with gr.Tab(ctx.key("tab.history"), id="history", elem_id="tab-history") as history_tab:
                history = history_page.build(ctx)
            with gr.Tab(ctx.key("tab.system"), id="system", elem_id="tab-system") as system_tab:
                system = system_page.build(ctx)
        history_page.wire(ctx, history, history_tab, tabs, generate, edit)
        queue_panel.wire(ctx, queue)
        chain.wire(ctx, tabs, generate, edit, history)
        system_page.wire(ctx, system, system_tab)
    return blocks


def mount_studio(app: FastAPI, backend: StudioBackend | None = None, path: str = "/") -> FastAPI:
    """Mount the pages on ``app`` (the server's, with its services on ``app.state.services``).

    Routes added to ``app`` before this keep working next to the pages.
    """
    import gradio as gr

    if backend is None:
        from imagestudio.ui.services import StudioServices

        backend = StudioServices(app.state.services)
    texts = Texts.load()
    ctx = UIContext(backend=backend, texts=texts)
    blocks = build_blocks(ctx)
    settings = backend.settings
    from imagestudio.ui.early_script import EarlyHeadScript

    app.add_middleware(EarlyHeadScript, script=LANGUAGE_SCRIPT, path=path)
    return gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        i18n=texts.gradio_i18n(),
        css=CSS + studio_css(),
        # Finished images are served from the outputs folder, and nothing else outside Gradio's own.
        allowed_paths=[str(settings.outputs_dir)],
        max_file_size=_upload_limit(settings),
        show_error=False,
        ssr_mode=False,
        # The History page is the record of every run; Gradio's own per-browser run list would be a
        # second, untranslated one kept in the browser's storage.
        run_history=False,
    )


def studio_css() -> str:
    """The CSS of the pieces that keep their styles next to their code (queue panel, lightbox, History)."""
    from imagestudio.ui import chain, queue_panel
    from imagestudio.ui.history_style import CSS as HISTORY_CSS

    return queue_panel.CSS + chain.CSS + HISTORY_CSS


def _upload_limit(settings: Any) -> int | None:
    """Uploads larger than an input image may be are refused by Gradio before they are stored."""
    inputs = getattr(settings, "inputs", None)
    return getattr(inputs, "max_input_bytes", None)
