"""The History page: every past image, newest first, searchable by prompt; parameters, reuse, delete.

No ``from __future__ import annotations``: Gradio reads handler annotations (``gr.SelectData``).
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.ui.common import UIContext, error_message, slot
from imagestudio.ui.presets import CUSTOM_SIZE, choice_for
from imagestudio.ui.style import lang_js
from imagestudio.ui.texts import language
from imagestudio.ui.widgets import error_html, note_html, table_html

if TYPE_CHECKING:
    from imagestudio.ui.edit_page import EditPage
    from imagestudio.ui.generate_page import GeneratePage

PAGE_SIZE = 60


@dataclass
class HistoryPage:
    search: Any
    find: Any
    refresh: Any
    summary: Any
    gallery: Any
    image: Any
    details: Any
    params: Any
    use: Any
    delete: Any
    status: Any
    ids: Any
    selected: Any
    lang: Any
    newer: Any
    older: Any
    page_no: Any
    #: Chained work on the chosen picture (see ui/chain.py).
    edit_this: Any = None
    vary_this: Any = None
    upscale_this: Any = None
    #: The pictures an edit or img2img started from.
    inputs: Any = None
    #: Multi-select ("Select several"), and the confirmation a delete asks for.
    multi: Any = None
    marked: Any = None
    marked_note: Any = None
    confirm_row: Any = None
    confirm_text: Any = None
    confirm_yes: Any = None
    confirm_no: Any = None


def build(ctx: UIContext) -> HistoryPage:
    import gradio as gr

    key = ctx.key
    with gr.Row(equal_height=True):
        search = gr.Textbox(
            label=key("hist.search"), placeholder=key("hist.search_hint"), scale=5, elem_id="hist-search"
        )
        find = gr.Button(key("hist.find"), variant="primary", scale=1, elem_id="hist-find")
        refresh = gr.Button(key("hist.refresh"), scale=1, elem_id="hist-refresh")
    summary = slot("hist-summary")
    with gr.Row(equal_height=True):
        multi = gr.Checkbox(label=key("hist.multi"), info=key("hist.multi_info"), elem_id="hist-multi")
        marked_note = slot("hist-marked")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gallery = gr.Gallery(
                label=key("hist.gallery"),
                columns=4,
                height=620,
                object_fit="cover",
                allow_preview=False,
                elem_id="hist-gallery",
                elem_classes="is-thumbs",
            )
            # Pages of PAGE_SIZE: every past image can be reached, not only the newest ones.
            with gr.Row():
                newer = gr.Button(key("hist.newer"), size="sm", interactive=False, elem_id="hist-newer")
                older = gr.Button(key("hist.older"), size="sm", interactive=False, elem_id="hist-older")
        with gr.Column(scale=2):
            image = gr.Image(
                label=key("hist.details"),
                interactive=False,
                height=320,
                type="filepath",
                # No "Share": it posts to Hugging Face Spaces, which a local studio is not (it only errored).
                buttons=["download", "fullscreen"],
                elem_id="hist-image",
            )
            details = gr.HTML(note_html(None), elem_id="hist-details", padding=False)
            with gr.Row():
                use = gr.Button(key("hist.use"), variant="primary", interactive=False, elem_id="hist-use")
                delete = gr.Button(
                    key("hist.delete"), variant="stop", interactive=False, elem_id="hist-delete"
                )
            with gr.Row():
                edit_this = gr.Button(
                    key("chain.edit_this"), size="sm", interactive=False, elem_id="hist-edit-this"
                )
                vary_this = gr.Button(
                    key("chain.vary_this"), size="sm", interactive=False, elem_id="hist-vary-this"
                )
                upscale_this = gr.Button(
                    key("chain.upscale_this"), size="sm", interactive=False, elem_id="hist-upscale-this"
                )
            # The question on its own full-width line, its answers under it (side by side it was squeezed
            # into a column a few words wide).
            with gr.Column(visible=False, elem_id="hist-confirm") as confirm_row:
                confirm_text = slot("hist-confirm-text")
                with gr.Row():
                    confirm_yes = gr.Button(
                        key("hist.confirm_delete"), variant="stop", size="sm", elem_id="hist-confirm-yes"
                    )
                    confirm_no = gr.Button(key("hist.keep"), size="sm", elem_id="hist-confirm-no")
            status = slot("hist-status")
            inputs = gr.Gallery(
                label=key("hist.inputs"), columns=3, height=160, object_fit="contain", allow_preview=False,
                visible=False, elem_id="hist-inputs", elem_classes="is-thumbs",
            )  # fmt: skip
            with gr.Accordion(key("hist.details"), open=False):
                params = gr.JSON(elem_id="hist-params", show_label=False)
    ids = gr.State([])
    selected = gr.State(None)
    lang = gr.Textbox(visible=False, elem_id="hist-lang")
    return HistoryPage(
        search,
        find,
        refresh,
        summary,
        gallery,
        image,
        details,
        params,
        use,
        delete,
        status,
        ids,
        selected,
        lang,
        newer,
        older,
        gr.State(0),
        edit_this=edit_this,
        vary_this=vary_this,
        upscale_this=upscale_this,
        inputs=inputs,
        multi=multi,
        marked=gr.State([]),
        marked_note=marked_note,
        confirm_row=confirm_row,
        confirm_text=confirm_text,
        confirm_yes=confirm_yes,
        confirm_no=confirm_no,
    )


def wire(
    ctx: UIContext, page: HistoryPage, tab: Any, tabs: Any, generate: "GeneratePage", edit: "EditPage"
) -> None:
    """Events of the page; ``generate``/``edit`` are the pages "use these settings" fills."""
    import gradio as gr

    listing = [
        page.gallery,
        page.ids,
        page.summary,
        page.image,
        page.details,
        page.params,
        page.selected,
        page.page_no,
        page.newer,
        page.older,
    ]
    buttons = [page.use, page.delete, page.edit_this, page.vary_this, page.upscale_this]
    # A new listing forgets the chosen and marked pictures and any pending delete question.
    listing += [page.inputs, page.marked, page.marked_note, page.confirm_row]

    def cleared() -> tuple[Any, ...]:
        return (gr.Gallery(value=None, visible=False), [], "", gr.Column(visible=False))

    def load(query: str, lang: str) -> tuple[Any, ...]:
        return _listing(ctx, query, lang) + cleared() + (gr.Button(interactive=False),) * len(buttons)

    load_inputs = [page.search, page.lang]
    for trigger in (page.find.click, page.refresh.click, page.search.submit, tab.select):
        trigger(load, load_inputs, [*listing, *buttons], js=lang_js(2), queue=False)

    def turn(step: int) -> Any:
        def show(query: str, page_no: int, lang: str) -> tuple[Any, ...]:
            return (
                _listing(ctx, query, lang, (page_no or 0) + step)
                + cleared()
                + (gr.Button(interactive=False),) * len(buttons)
            )

        return show

    for button, step in ((page.newer, -1), (page.older, 1)):
        button.click(
            turn(step),
            [page.search, page.page_no, page.lang],
            [*listing, *buttons],
            js=lang_js(3),
            queue=False,
        )

    def select(
        ids: list[str], multi: bool, marked: list[str], lang: str, evt: gr.SelectData
    ) -> tuple[Any, ...]:
        lang = language(lang)
        index = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
        entry_id = ids[index] if 0 <= index < len(ids) else None
        entry = ctx.backend.history_entry(entry_id) if entry_id else None
        off = (gr.Button(interactive=False),) * len(buttons)
        if entry is None:
            return (None, "", None, None, *off, "", gr.Gallery(visible=False), gr.skip(), gr.skip())
        marked = list(marked or [])
        if multi:
            # "Select several": each click marks or unmarks a picture.
            if entry.id in marked:
                marked.remove(entry.id)
            else:
                marked.append(entry.id)
        inputs = [str(path) for path in entry.inputs]
        return (
            str(entry.path),
            details_html(ctx, entry, lang),
            entry.metadata,
            entry.id,
            *(gr.Button(interactive=True),) * len(buttons),
            "",
            gr.Gallery(value=inputs or None, visible=bool(inputs)),
            marked,
            marked_html(ctx, marked, ids, lang),
        )

    page.gallery.select(
        select,
        [page.ids, page.multi, page.marked, page.lang],
        [
            page.image,
            page.details,
            page.params,
            page.selected,
            *buttons,
            page.status,
            page.inputs,
            page.marked,
            page.marked_note,
        ],
        js=lang_js(4),
        # Queued one at a time and every click kept: two quick clicks in "Select several" must both
        # mark (unqueued, both read the same marked list and the second overwrote the first).
        queue=True,
        concurrency_limit=1,
        trigger_mode="multiple",
        show_progress="hidden",
    )
    page.multi.change(lambda: ([], ""), None, [page.marked, page.marked_note], queue=False)

    def targets(entry_id: str | None, multi: bool, marked: list[str]) -> list[str]:
        """What Delete acts on: the marked pictures in "Select several", else the chosen one."""
        if multi and marked:
            return list(marked)
        return [entry_id] if entry_id else []

    def ask(entry_id: str | None, multi: bool, marked: list[str], lang: str) -> tuple[Any, Any]:
        count = len(targets(entry_id, multi, marked))
        if count == 0:
            return gr.Column(visible=False), ""
        question = ctx.t("hist.confirm_question", language(lang), count=count)
        return gr.Column(visible=True), note_html(question, "warn")

    page.delete.click(
        ask,
        [page.selected, page.multi, page.marked, page.lang],
        [page.confirm_row, page.confirm_text],
        js=lang_js(4),
        queue=False,
    )
    page.confirm_no.click(lambda: gr.Column(visible=False), None, page.confirm_row, queue=False)

    def remove(
        entry_id: str | None, multi: bool, marked: list[str], query: str, page_no: int, lang: str
    ) -> tuple[Any, ...]:
        lang = language(lang)
        chosen = targets(entry_id, multi, marked)
        deleted = 0
        try:
            for one in chosen:
                deleted += bool(ctx.backend.delete(one))
        except Exception as exc:  # noqa: BLE001 - shown on the page; the page must stay usable
            message = error_html(error_message(ctx, exc, lang))
            return (*_listing(ctx, query, lang, page_no), *cleared(), *(gr.skip(),) * len(buttons), message)
        return (
            *_listing(ctx, query, lang, page_no),
            *cleared(),
            *(gr.Button(interactive=False),) * len(buttons),
            note_html(ctx.t("hist.deleted_n", lang, count=deleted), "ok"),
        )

    page.confirm_yes.click(
        remove,
        [page.selected, page.multi, page.marked, page.search, page.page_no, page.lang],
        [*listing, *buttons, page.status],
        js=lang_js(6),
        queue=False,
    )

    gen_fields = [
        generate.prompt,
        generate.model,
        generate.size,
        generate.width,
        generate.height,
        generate.steps,
        generate.seed_mode,
        generate.seed,
        generate.count,
        generate.source,
        generate.strength,
        generate.source_box,
        generate.variety,
    ]
    if generate.control is not None:
        gen_fields += generate.control.settings_fields()
    edit_fields = edit.settings_fields() if edit is not None else []

    def use(entry_id: str | None, lang: str) -> tuple[Any, ...]:
        lang = language(lang)
        entry = ctx.backend.history_entry(entry_id) if entry_id else None
        skip_all = (gr.skip(),) * (len(gen_fields) + len(edit_fields))
        if entry is None:
            return (*skip_all, gr.skip(), error_html(ctx.t("err.job_not_found", lang)))
        meta = entry.metadata
        if meta.get("task") == "edit" and edit is not None:
            values = edit.settings_values(meta, entry)
            return (
                *(gr.skip(),) * len(gen_fields),
                *values,
                gr.Tabs(selected="edit"),
                note_html(ctx.t("hist.used_edit", lang), "ok"),
            )
        if meta.get("mode") == "upscale":
            # An enlarged picture: only the words it was made from carry over (its "model" is the upscaler).
            words = (meta.get("prompt", entry.prompt), *(gr.skip(),) * (len(gen_fields) - 1))
            return (*words, *(gr.skip(),) * len(edit_fields), gr.Tabs(selected="generate"), gr.skip())
        # A hires picture is restored as its first pass plus the hires switch (the size A1111 records too).
        width = meta.get("first_pass_width", meta.get("width", entry.width))
        height = meta.get("first_pass_height", meta.get("height", entry.height))
        choice = choice_for(width, height)
        values = (
            meta.get("prompt", entry.prompt),
            meta.get("model", entry.model) or gr.skip(),
            choice,
            width if choice == CUSTOM_SIZE else gr.skip(),
            height if choice == CUSTOM_SIZE else gr.skip(),
            meta.get("steps") or gr.skip(),
            "fixed",
            # Shown with its value: a hidden number box kept its old value, and the seed mode's change
            # then drew a new random seed over the recorded one.
            gr.Number(value=entry.seed, visible=True),
            1,
            *restored_start_picture(meta, entry),
            float(meta.get("variety") or 0.0),
        )
        if generate.control is not None:
            values = (*values, *generate.control.settings_values(meta, entry))
        return (
            *values,
            *(gr.skip(),) * len(edit_fields),
            gr.Tabs(selected="generate"),
            note_html(ctx.t("hist.used", lang), "ok"),
        )

    page.use.click(
        use,
        [page.selected, page.lang],
        [*gen_fields, *edit_fields, tabs, page.status],
        js=lang_js(2),
        queue=False,
    )


def restored_start_picture(meta: dict[str, Any], entry: Any) -> tuple[Any, Any, Any]:
    """The start-picture editor, strength and its accordion for "use these settings" on a Generate result.

    An img2img/inpaint result brings back its kept start picture, its mask painted over it and its
    strength (without them the next run would silently be text-to-image); a text-to-image result empties
    the editor, so a picture left there from earlier work does not turn it into img2img.
    """
    import gradio as gr

    from imagestudio.registry import MODELS

    if not meta.get("init_image"):
        return None, gr.skip(), gr.skip()
    start = kept_input(entry, meta.get("init_image"))
    if start is None:  # inputs not kept (older history): leave the editor as it is
        return gr.skip(), meta.get("strength") or gr.skip(), gr.Accordion(open=True)
    mask = kept_input(entry, meta.get("mask"))
    layers = [mask_layer(mask)] if mask is not None else []
    value = {"background": start, "layers": layers, "composite": start}
    # The recorded strength; a result without one ran at its model's default (the registry's).
    spec = MODELS.get(str(meta.get("model")))
    strength = meta.get("strength") or (spec.default_strength if spec else None)
    return value, float(strength) if strength else gr.skip(), gr.Accordion(open=True)


def kept_input(entry: Any, recorded: Any) -> str | None:
    """The kept file of an input the metadata names (``{"sha256": …}``), if History still has it.

    Found by its hash, not its place: one picture may be both the start picture and the control picture.
    """
    sha = recorded.get("sha256") if isinstance(recorded, dict) else None
    if not isinstance(sha, str):
        return None
    return next((str(path) for path in entry.inputs if Path(path).stem == sha), None)


def mask_layer(path: str) -> Any:
    """A kept mask (white = repaint) as the editor's painted layer: the brush's colour where white."""
    from PIL import Image, ImageColor

    from imagestudio.ui.generate_page import MASK_COLOR, MASK_OPACITY

    with Image.open(path) as image:
        mask = image.convert("L")
    layer = Image.new("RGBA", mask.size, (*ImageColor.getrgb(MASK_COLOR), 0))
    layer.putalpha(mask.point(lambda v: round(255 * MASK_OPACITY) if v > 0 else 0))
    return layer


def _listing(ctx: UIContext, query: str, lang: str, page_no: int = 0) -> tuple[Any, ...]:
    """One page of the gallery (newest first) and everything that goes with it: ids, summary, cleared
    details, the page number (kept within the pages there are, e.g. after the last image of the last
    page was deleted) and the paging buttons."""
    import gradio as gr

    lang = language(lang)
    query = (query or "").strip()
    page_no = max(0, int(page_no or 0))
    result = ctx.backend.history(query, PAGE_SIZE, page_no * PAGE_SIZE)
    pages = max(1, -(-result.total // PAGE_SIZE))
    if page_no >= pages:  # past the end (images were deleted meanwhile): show the last page
        page_no = pages - 1
        result = ctx.backend.history(query, PAGE_SIZE, page_no * PAGE_SIZE)
    items = [(str(e.path), _caption(e.prompt)) for e in result.entries]
    if result.total == 0:
        summary = ctx.t("hist.nothing_found", lang, query=query) if query else ctx.t("hist.empty", lang)
    else:
        summary = ctx.t("hist.count", lang, count=result.total)
        if pages > 1:
            summary += " " + ctx.t("hist.page", lang, page=page_no + 1, pages=pages)
        summary += " " + ctx.t("hist.pick", lang)
    return (
        items,
        [e.id for e in result.entries],
        note_html(summary),
        None,
        "",
        None,
        None,
        page_no,
        gr.Button(interactive=page_no > 0),
        gr.Button(interactive=page_no < pages - 1),
    )


def _caption(prompt: str, limit: int = 60) -> str:
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"


def marked_html(ctx: UIContext, marked: list[str], ids: list[str], lang: str) -> str:
    """ "N selected", and a style that marks the marked thumbnails (their places in the gallery): a thick
    frame and a check mark drawn over the picture (an outline under the picture showed as a faint corner)."""
    if not marked:
        return ""
    places = [ids.index(entry_id) + 1 for entry_id in marked if entry_id in ids]
    items = [f"#hist-gallery .grid-container > :nth-child({n})" for n in places]
    style = (
        f"<style>{', '.join(items)} {{ position: relative; }}"
        f"{', '.join(f'{item}::after' for item in items)} {{ {MARK_FRAME} }}"
        f"{', '.join(f'{item}::before' for item in items)} {{ {MARK_CHECK} }}</style>"
    )
    return note_html(ctx.t("hist.marked", lang, count=len(marked))) + (style if places else "")


#: A marked thumbnail: a frame in the studio's accent with a white inner line (seen on any picture) ...
MARK_FRAME = (
    'content: ""; position: absolute; inset: 0; border: 5px solid #c2410c; border-radius: 6px;'
    " box-shadow: inset 0 0 0 2px #ffffff; pointer-events: none; z-index: 2;"
)
#: ... and a check mark in its lower left corner (the gallery's label covers the first picture's top),
#: so "marked" does not rest on colour alone.
MARK_CHECK = (
    'content: "\\2713"; position: absolute; bottom: 6px; left: 6px; width: 1.6rem; height: 1.6rem;'
    " line-height: 1.6rem; text-align: center; font-weight: 700; color: #ffffff; background: #c2410c;"
    " border: 2px solid #ffffff; border-radius: 50%; pointer-events: none; z-index: 3;"
)


def details_html(ctx: UIContext, entry: Any, lang: str) -> str:
    meta = entry.metadata
    rows = [
        (ctx.t("hist.field.prompt", lang), entry.prompt),
        (ctx.t("hist.field.model", lang), entry.model or "—"),
        (ctx.t("hist.field.size", lang), f"{entry.width} × {entry.height}"),
        (ctx.t("hist.field.steps", lang), str(meta.get("steps", "—"))),
        (ctx.t("hist.field.seed", lang), str(entry.seed)),
        (
            ctx.t("hist.field.created", lang),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.created_at)),
        ),
    ]
    # An edit's or img2img's own settings, and what it started from (the pictures show below).
    if meta.get("negative_prompt") is not None:
        rows.append((ctx.t("hist.field.negative", lang), str(meta["negative_prompt"]).strip() or "—"))
    if meta.get("true_cfg_scale") is not None:
        rows.append((ctx.t("hist.field.true_cfg", lang), str(meta["true_cfg_scale"])))
    if meta.get("strength") is not None:
        rows.append((ctx.t("hist.field.strength", lang), str(meta["strength"])))
    control = meta.get("control")
    if isinstance(control, dict) and control.get("type"):
        # What steered it: the map's kind, its weight and the share of the steps it acted on.
        kind = str(control["type"])
        label = ctx.t(f"ctl.type_{kind}", lang) if ctx.texts.has(f"ctl.type_{kind}") else kind
        window = f"{control.get('start', 0)}–{control.get('end', 1)}"
        rows.append((ctx.t("hist.field.control", lang), f"{label} · {control.get('weight')} · {window}"))
    if meta.get("hires_scale") is not None:
        rows.append(
            (ctx.t("hist.field.hires", lang), f"×{meta['hires_scale']} · {meta.get('hires_upscaler')}")
        )
    if meta.get("weights") is not None:
        # The weight variant that ran (and its text encoder's precision when quantized).
        encoder = meta.get("text_encoder_weights")
        rows.append(
            (ctx.t("hist.field.weights", lang), str(meta["weights"]) + (f" · {encoder}" if encoder else ""))
        )
    names = [item.get("name") for item in meta.get("input_images") or [] if isinstance(item, dict)]
    names += [meta[k].get("name") for k in ("init_image", "mask") if isinstance(meta.get(k), dict)]
    if any(names):
        rows.append((ctx.t("hist.field.inputs", lang), ", ".join(str(n) for n in names if n)))
    if meta.get("elapsed_s") is not None:
        seconds = f"{float(meta['elapsed_s']):.1f}"
        rows.append((ctx.t("hist.field.elapsed", lang), ctx.t("unit.seconds", lang, n=seconds)))
    rows.append((ctx.t("hist.field.path", lang), entry.path.name))
    return table_html(rows)
