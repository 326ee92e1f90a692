"""What the Generate and Edit pages share: the run buttons, the result area, the model list's entries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.registry import MODELS

if TYPE_CHECKING:
    from gradio import Button

    from imagestudio.ui.common import UIContext
    from imagestudio.ui.texts import Texts

#: The result area's height (px); the live preview takes the same box while a job runs.
RESULT_HEIGHT = 520
#: No "Share" on a local studio's results (Gradio's share link would upload them).
RESULT_BUTTONS: list[Literal["share", "download", "download_all", "fullscreen"] | Button] = [
    "download",
    "fullscreen",
]


def model_title(ctx: UIContext, model_id: str, title: str) -> Any:
    """A model's name for the page: translated where it says more than a name (the offline tiny models)."""
    return ctx.key(f"model.{model_id}") if ctx.texts.has(f"model.{model_id}") else title


def model_info(ctx: UIContext, model_id: str, default: str = "gen.model_info") -> Any:
    """The line under the model list: an offline model's "random weights: noise" stays readable there
    while the list is closed (its name alone is cut off)."""
    spec = MODELS.get(model_id)
    return ctx.key("model.noise_info") if spec is not None and spec.tiny else ctx.key(default)


def model_choices(ctx: UIContext, task: str) -> list[tuple[Any, str]]:
    return [(model_title(ctx, spec.id, spec.title), spec.id) for spec in MODELS.values() if spec.task == task]


def marked_model_choices(ctx: UIContext, task: str, lang: str) -> list[tuple[str, str]]:
    """The model list in ``lang`` with each real model that is not on this machine marked so: picking
    one would only tell, on Generate, that it has to be downloaded first."""
    from imagestudio.errors import UserError
    from imagestudio.models.locate import find_model_dir

    settings = ctx.backend.settings
    choices = []
    for spec in MODELS.values():
        if spec.task != task:
            continue
        title = ctx.t(f"model.{spec.id}", lang) if ctx.texts.has(f"model.{spec.id}") else spec.title
        try:
            here = spec.tiny or find_model_dir(spec, settings, build_tiny=False) is not None
        except (OSError, UserError):  # an unreadable or misconfigured folder reads as "not here"
            here = False
        choices.append((title if here else f"{title} ({ctx.t('sys.model_missing', lang)})", spec.id))
    return choices


def wire_model_marks(ctx: UIContext, blocks: Any, lists: list[tuple[Any, str]], lang: Any) -> None:
    """Mark the models not on this machine in each (dropdown, task) of ``lists`` when the page opens
    (a download since the server started counts: the lists are made per page load)."""
    import gradio as gr

    from imagestudio.ui.style import lang_js
    from imagestudio.ui.texts import language

    def marks(page_lang: str) -> list[Any]:
        said = language(page_lang)
        return [gr.Dropdown(choices=marked_model_choices(ctx, task, said)) for _, task in lists]

    outputs = [dropdown for dropdown, _ in lists]
    blocks.load(marks, [lang], outputs, js=lang_js(1), queue=False, show_progress="hidden")


def run_row(ctx: UIContext, prefix: str, label: Any) -> tuple[Any, Any]:
    """The page's run and Cancel buttons (``<prefix>-run``, ``<prefix>-cancel``) and, under them, the
    keyboard shortcut written out (``<prefix>-run-hint``): a tooltip alone is found by few."""
    import gradio as gr

    with gr.Row(elem_classes="is-run-row"):
        run = gr.Button(label, variant="primary", scale=2, elem_id=f"{prefix}-run")
        cancel = gr.Button(
            ctx.key("gen.cancel"), variant="stop", interactive=False, scale=1, elem_id=f"{prefix}-cancel"
        )
    gr.Markdown(ctx.key("gen.run_hint"), elem_id=f"{prefix}-run-hint", elem_classes="is-run-hint")
    return run, cancel


def result_placeholder_css(texts: Texts) -> str:
    """What an empty result area says, in the language on screen (Gradio keeps ``<html lang>`` equal to
    it): an empty gallery showed only an icon, and until then an upload box."""
    from imagestudio.ui.texts import DEFAULT_LANGUAGE, LANGUAGES

    def content(lang: str) -> str:
        # A valid CSS string: quotes and backslashes escaped, the words themselves kept.
        return json.dumps(texts.t("gen.result_empty", lang), ensure_ascii=False)

    rules = [
        ".is-results .empty { flex-direction: column; gap: 0.6rem; }",
        ".is-results .empty::after { font-size: var(--text-md); color: var(--body-text-color-subdued);"
        f" content: {content(DEFAULT_LANGUAGE)}; }}",
    ]
    # !important: Gradio repeats each rule under its container's classes, and that copy of the default
    # rule would outrank a plain translated one.
    for lang in LANGUAGES:
        if lang != DEFAULT_LANGUAGE:
            rules.append(
                f'html[lang|="{lang}"] .is-results .empty::after {{ content: {content(lang)} !important; }}'
            )
    return "\n".join(rules) + "\n"
