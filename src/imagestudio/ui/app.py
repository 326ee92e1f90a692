"""The studio's pages as one Gradio Blocks app, mounted at "/" of the server's FastAPI app."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from imagestudio.ui.common import UIContext
from imagestudio.ui.page_parts import result_placeholder_css
from imagestudio.ui.studio_css import STUDIO_CSS
from imagestudio.ui.studio_js import STUDIO_SCRIPT
from imagestudio.ui.style import CSS, LANGUAGE_SCRIPT
from imagestudio.ui.texts import Texts

if TYPE_CHECKING:
    import gradio as gr
    from fastapi import FastAPI

    from imagestudio.config import Settings
    from imagestudio.ui.backend import StudioBackend

TAB_IDS = ("generate", "edit", "history", "system")


def default_model(settings: Settings, task: str) -> str:
    """The registry's default for ``task`` when it is here, else the first model of that task that is."""
    from imagestudio.models.locate import find_model_dir
    from imagestudio.registry import DEFAULT_EDIT_MODEL, DEFAULT_GENERATE_MODEL, MODELS

    preferred = DEFAULT_GENERATE_MODEL if task == "text-to-image" else DEFAULT_EDIT_MODEL
    candidates = [preferred] + [m for m, spec in MODELS.items() if spec.task == task and m != preferred]
    for model_id in candidates:
        if find_model_dir(MODELS[model_id], settings, build_tiny=False) is not None:
            return model_id
    # Nothing on disk yet (a first start): the offline model builds itself on first use, so the first
    # click makes a picture; the first-run banner says which real model to download.
    return next((m for m in candidates if MODELS[m].tiny), preferred)


def header_html(texts: Texts | None = None, logout: bool = False) -> str:
    """The title and the language links; with ``logout`` (a key guards the server) a *Log out* button.

    The link's words come in both languages and CSS shows the one matching ``<html lang>``, which
    Gradio keeps equal to the language on screen (also after a switch): this HTML is not translated.
    """
    logout_link = ""
    if logout and texts is not None:
        words = "".join(
            f'<span lang="{lang}">{escape(texts.t("login.logout", lang))}</span>' for lang in ("en", "ru")
        )
        # A form, not a link: logging out changes state, so it is a POST that the Origin check guards
        # (a GET link could be followed from any other site's page).
        logout_link = (
            '<form method="post" action="/logout" class="is-logout-form">'
            f'<button type="submit" class="is-logout" id="is-logout">{words}</button></form>'
        )
    return (
        '<div class="is-header"><div><h1>imagestudio</h1></div>'
        '<div class="is-lang" id="is-lang">'
        '<a href="?lang=en" hreflang="en" data-lang="en">English</a>'
        '<a href="?lang=ru" hreflang="ru" data-lang="ru">Русский</a>' + logout_link + "</div></div>"
    )


def _has_api_key(settings: Settings) -> bool:
    return settings.server.api_key is not None


def build_blocks(ctx: UIContext) -> gr.Blocks:
    import gradio as gr

    from imagestudio.ui import (
        chain,
        client_api,
        edit_page,
        first_run,
        generate_page,
        history_page,
        page_parts,
        queue_panel,
        remembered,
        system_page,
    )

    settings = ctx.backend.settings
    blocks = gr.Blocks(title="imagestudio", analytics_enabled=False)
    with blocks:
        gr.HTML(header_html(ctx.texts, logout=_has_api_key(settings)), elem_id="is-header-bar")
        gr.Markdown(ctx.key("app.subtitle"), elem_id="is-subtitle")
        chain.scripts(ctx)
        queue = queue_panel.build(ctx)
        ctx.queue_timer = queue.timer
        with gr.Tabs(selected="generate", elem_id="is-tabs") as tabs:
            with gr.Tab(ctx.key("tab.generate"), id="generate", elem_id="tab-generate"):
                gen_banner = first_run.build(ctx, "gen", first_run.missing_default(settings, "text-to-image"))
                generate = generate_page.build(ctx, default_model(settings, "text-to-image"))
            with gr.Tab(ctx.key("tab.edit"), id="edit", elem_id="tab-edit"):
                edit_banner = first_run.build(ctx, "edit", first_run.missing_default(settings, "edit"))
                edit = edit_page.build(ctx, default_model(settings, "edit"))
            with gr.Tab(ctx.key("tab.history"), id="history", elem_id="tab-history") as history_tab:
                history = history_page.build(ctx)
            with gr.Tab(ctx.key("tab.system"), id="system", elem_id="tab-system") as system_tab:
                system = system_page.build(ctx)
        history_page.wire(ctx, history, history_tab, tabs, generate, edit)
        queue_panel.wire(ctx, queue, blocks)
        chain.wire(ctx, tabs, generate, edit, history)
        system_page.wire(ctx, system, system_tab)
        first_run.wire(ctx, [gen_banner, edit_banner], blocks)
        remembered.wire(ctx, blocks, generate, edit)
        page_parts.wire_model_marks(
            ctx, blocks, [(generate.model, "text-to-image"), (edit.model, "edit")], generate.lang
        )
        client_api.wire(ctx, default_model(settings, "text-to-image"), default_model(settings, "edit"))
    return blocks


def mount_studio(app: FastAPI, backend: StudioBackend | None = None, path: str = "/") -> FastAPI:
    """Mount the pages on ``app`` (the server's, with its services on ``app.state.services``).

    Routes added to ``app`` before this keep working next to the pages.
    """
    import gradio as gr

    if backend is None:
        from imagestudio.ui.live_backend import LiveBackend

        backend = LiveBackend(app.state.services)
    texts = Texts.load()
    ctx = UIContext(backend=backend, texts=texts)
    blocks = build_blocks(ctx)
    settings = backend.settings
    from imagestudio.ui.early_script import EarlyHeadScript
    from imagestudio.ui.owner import OwnerCookie
    from imagestudio.ui.system_page import ROW_DOWNLOAD_SCRIPT

    app.add_middleware(
        EarlyHeadScript, script=LANGUAGE_SCRIPT + STUDIO_SCRIPT + ROW_DOWNLOAD_SCRIPT, path=path
    )
    app.add_middleware(OwnerCookie, path=path)
    _lock_down_files(blocks, settings)
    mounted: FastAPI = gr.mount_gradio_app(
        app,
        blocks,
        path=path,
        i18n=texts.gradio_i18n(),
        css=CSS + STUDIO_CSS + feature_css() + result_placeholder_css(texts),
        # Finished images are served from the outputs folder, and nothing else outside Gradio's own.
        allowed_paths=[str(settings.outputs_dir)],
        max_file_size=_upload_limit(settings),
        show_error=False,
        ssr_mode=False,
        # The History page is the record of every run; Gradio's own per-browser run list would be a
        # second, untranslated one kept in the browser's storage.
        run_history=False,
    )
    return mounted


def _lock_down_files(blocks: gr.Blocks, settings: Settings) -> None:
    """Which files the pages may read and serve: uploads, Gradio's own cache, the outputs folder.

    * Gradio checks that an input file is one of its uploads only in an app it launched itself
      (``has_launched``); mounted, it would read any path a client names. We are its launcher.
    * :func:`guard_file_inputs` repeats the check where the path is finally used.
    * The outputs folder is served as static files, not copied into Gradio's cache: a deleted image
      is then gone from ``/gradio_api/file=`` too, instead of living on as a cached copy.
      (``set_static_paths`` is process-wide in Gradio; adding a path twice is harmless.)
    """
    import gradio as gr

    from imagestudio.ui.uploads import guard_file_inputs

    blocks.has_launched = True
    guard_file_inputs(blocks)
    gr.set_static_paths([str(settings.outputs_dir)])


def feature_css() -> str:
    """The CSS of the pieces that keep their styles next to their code (queue panel, lightbox, History)."""
    from imagestudio.ui import chain, queue_panel
    from imagestudio.ui.history_style import CSS as HISTORY_CSS
    from imagestudio.ui.system_page import ROW_DOWNLOAD_CSS

    return queue_panel.CSS + chain.CSS + HISTORY_CSS + ROW_DOWNLOAD_CSS


def _upload_limit(settings: Settings) -> int | None:
    """Uploads larger than an input image may be are refused by Gradio before they are stored."""
    return settings.inputs.max_input_bytes
