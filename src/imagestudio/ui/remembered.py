"""Settings that survive a reload, per browser: the last prompt and settings, and the recent prompts.

Kept in the browser's own storage (Gradio's ``BrowserState``, localStorage), never on the server: two
people on one studio keep their own. Values are saved by client-side events (no server round trip on
every keystroke) and put back when the page opens; whatever no longer fits (a model that is gone, a
malformed entry) is left at the page's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagestudio.ui.common import UIContext

if TYPE_CHECKING:
    from imagestudio.ui.edit_page import EditPage
    from imagestudio.ui.generate_page import GeneratePage

SETTINGS_KEY = "imagestudio.settings"
RECENT_KEY = "imagestudio.recent"
#: How many recent prompts the list keeps.
RECENT_LIMIT = 10


def _fields(generate: GeneratePage, edit: EditPage) -> dict[str, Any]:
    """Stored name → component. The names are the storage format: keep them stable."""
    return {
        "gen-prompt": generate.prompt,
        "gen-model": generate.model,
        "gen-size": generate.size,
        "gen-width": generate.width,
        "gen-height": generate.height,
        "gen-steps": generate.steps,
        "gen-count": generate.count,
        "gen-strength": generate.strength,
        "edit-instruction": edit.instruction,
        "edit-negative": edit.negative,
        "edit-model": edit.model,
        "edit-true_cfg": edit.true_cfg,
        "edit-steps": edit.steps,
    }


def save_js(names: list[str]) -> str:
    """A client-side event body: the current values as one object (the stored settings)."""
    import json

    return f"(...v) => Object.fromEntries({json.dumps(names)}.map((n, i) => [n, v[i]]))"


def restored(
    ctx: UIContext, saved: Any, names: list[str], generate: GeneratePage, edit: EditPage
) -> list[Any]:
    """One update per field: the stored value when it is still valid here, else leave the field alone."""
    import gradio as gr

    from imagestudio.registry import MODELS
    from imagestudio.ui.presets import CUSTOM_SIZE, SIZE_PRESETS, SOURCE_SIZE

    saved = saved if isinstance(saved, dict) else {}
    sizes = {p.value for p in SIZE_PRESETS} | {CUSTOM_SIZE, SOURCE_SIZE}
    models = {"gen-model": "text-to-image", "edit-model": "edit"}
    updates = []
    for name in names:
        value = saved.get(name)
        ok = value is not None
        if name in models:
            spec = MODELS.get(value) if isinstance(value, str) else None
            ok = spec is not None and spec.task == models[name]
        elif name == "gen-size":
            ok = value in sizes
        elif name in ("gen-prompt", "edit-instruction", "edit-negative"):
            ok = isinstance(value, str)
        elif ok:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        updates.append(value if ok else gr.skip())
    return updates


def recent_list(prompt: str, recent: Any) -> list[str]:
    """``prompt`` first, then the earlier ones without it, at most :data:`RECENT_LIMIT`."""
    earlier = [p for p in (recent if isinstance(recent, list) else []) if isinstance(p, str) and p]
    prompt = (prompt or "").strip()
    if not prompt:
        return earlier[:RECENT_LIMIT]
    return [prompt, *[p for p in earlier if p != prompt]][:RECENT_LIMIT]


def _choices(recent: list[str]) -> list[tuple[str, str]]:
    return [(p if len(p) <= 80 else p[:79] + "…", p) for p in recent]


def wire(ctx: UIContext, blocks: Any, generate: GeneratePage, edit: EditPage) -> None:
    """Call inside the Blocks context, after both job pages are built."""
    import gradio as gr

    settings = gr.BrowserState({}, storage_key=SETTINGS_KEY)
    recent = gr.BrowserState([], storage_key=RECENT_KEY)
    fields = _fields(generate, edit)
    names, components = list(fields), list(fields.values())

    for component in components:
        component.change(None, components, settings, js=save_js(names), queue=False, show_progress="hidden")

    def restore(saved: Any, stored_recent: Any) -> list[Any]:
        earlier = recent_list("", stored_recent)
        return [*restored(ctx, saved, names, generate, edit), gr.Dropdown(choices=_choices(earlier))]

    blocks.load(restore, [settings, recent], [*components, generate.recent], show_progress="hidden")

    def remember(prompt: str, stored_recent: Any) -> tuple[list[str], Any]:
        updated = recent_list(prompt, stored_recent)
        return updated, gr.Dropdown(choices=_choices(updated), value=None)

    generate.panel.run.click(
        remember, [generate.prompt, recent], [recent, generate.recent], queue=False, show_progress="hidden"
    )
    generate.recent.input(
        lambda chosen: (chosen or gr.skip(), gr.Dropdown(value=None)),
        generate.recent,
        [generate.prompt, generate.recent],
        queue=False,
        show_progress="hidden",
    )
