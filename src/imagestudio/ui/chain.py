"""Chained work: a result or a History picture goes on to the next job in one click (or one drag).

* *Edit this* puts the picture into Picture 1 of the Edit page and opens it; *Vary this* makes it the
  Generate page's start picture (img2img) and opens that. Both are disabled while there is no picture
  to act on (a fresh page, results cleared, no History picture chosen).
* A picture dragged from a result gallery or from History onto a picture slot lands there (hovering
  over a page's tab while dragging opens that page), and a double click opens it in a lightbox
  (←/→ through the gallery, Esc closes). From the keyboard: Tab to a picture, Enter or Space opens it,
  and Esc puts the focus back on that picture.

No ``from __future__ import annotations``: Gradio reads handler annotations (``gr.SelectData``).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestudio.ui.common import UIContext
from imagestudio.ui.presets import SOURCE_SIZE
from imagestudio.ui.texts import LANGUAGES
from imagestudio.ui.upscale_action import wire_upscale

if TYPE_CHECKING:
    from imagestudio.ui.edit_page import EditPage
    from imagestudio.ui.generate_page import GeneratePage
    from imagestudio.ui.history_page import HistoryPage

#: Galleries whose pictures can be dragged into a slot and opened in the lightbox.
GALLERIES = "#gen-gallery, #edit-gallery, #hist-gallery"
#: Where a dragged picture can be dropped.
SLOTS = "#edit-image-1, #edit-image-2, #edit-image-3, #gen-source"

#: The texts the script shows (button names, alt texts), in both languages.
SCRIPT_WORDS = (
    "lightbox.close",
    "lightbox.prev",
    "lightbox.next",
    "compare.before",
    "compare.after",
    "compare.handle",
)
#: Installed once per page by an invisible HTML component (see :func:`scripts`).
SCRIPT = """
if (!window.__isChain) {
  window.__isChain = true;
  const GALLERIES = '__GALLERIES__';
  const SLOTS = '__SLOTS__';
  const TYPE = 'application/x-imagestudio-picture';

  // ---- lightbox
  const box = document.createElement('div');
  box.id = 'is-lightbox';
  box.hidden = true;
  box.tabIndex = -1;  // takes the focus while open, so the keys act on it and not on the page behind
  box.setAttribute('role', 'dialog');
  box.setAttribute('aria-modal', 'true');
  box.innerHTML = '<img alt=""><div class="is-lightbox-count" aria-live="polite"></div>'
    + '<button type="button" class="is-lightbox-close" data-go="close">\u00d7</button>'
    + '<button type="button" class="is-lightbox-prev" data-go="-1">\u2039</button>'
    + '<button type="button" class="is-lightbox-next" data-go="1">\u203a</button>';
  document.body.appendChild(box);
  // The buttons' names in the page's current language (the words come from the UI texts files).
  const WORDS = __WORDS__;
  const words = () => WORDS[(document.documentElement.lang || 'en').slice(0, 2)] || WORDS.en;
  const name = () => {
    for (const cls of ['close', 'prev', 'next']) {
      const button = box.querySelector('.is-lightbox-' + cls);
      button.setAttribute('aria-label', words()['lightbox.' + cls]);
      button.title = words()['lightbox.' + cls];
    }
  };
  let items = [];
  let index = 0;
  // Where the focus goes back to on close: the thumbnail it was opened from (or, should the gallery
  // have redrawn it meanwhile, the one showing the same picture).
  let opener = null;
  let openerGallery = null;
  let openerSrc = '';
  const show = () => {
    box.querySelector('img').src = items[index];
    box.dataset.index = String(index);
    box.querySelector('.is-lightbox-count').textContent = (index + 1) + ' / ' + items.length;
  };
  const close = () => {
    if (box.hidden) return;
    box.hidden = true;
    let back = opener && opener.isConnected ? opener : null;
    if (!back && openerGallery) {
      const same = [...openerGallery.querySelectorAll('img')].find((i) => i.src === openerSrc);
      back = same ? (same.closest('button') || same) : null;
    }
    if (back) back.focus();
    opener = null;
  };
  // ``pictures``: the gallery's pictures when it was opened (a click may redraw the gallery).
  const open = (gallery, pictures, img, from) => {
    items = [...new Set(pictures.map((i) => i.src))];
    index = Math.max(0, items.indexOf(img.src));
    opener = from || document.activeElement;
    openerGallery = gallery;
    openerSrc = img.src;
    box.hidden = false;
    name();
    show();
    box.focus();
  };
  const step = (by) => { index = (index + by + items.length) % items.length; show(); };
  document.addEventListener('dblclick', (event) => {
    const img = event.target.closest && event.target.closest('img');
    const gallery = img && img.closest(GALLERIES);
    if (!gallery) return;
    event.preventDefault();
    open(gallery, [...gallery.querySelectorAll('img')], img, img.closest('button'));
  });
  // A focused thumbnail: the picture it shows and its gallery, or null.
  const thumbnail = (target) => {
    const button = target && target.closest && target.closest('button');
    const gallery = button && button.closest(GALLERIES);
    const img = gallery && button.querySelector('img');
    return img ? {button, gallery, img} : null;
  };
  const activates = (event) => event.key === 'Enter' || event.key === ' ';
  document.addEventListener('keydown', (event) => {
    if (box.hidden) {
      // Enter or Space on a thumbnail (reached with Tab) chooses it, as a click does, and opens it.
      const thumb = activates(event) && !event.repeat && thumbnail(event.target);
      if (!thumb) return;
      event.preventDefault();
      event.stopPropagation();
      const {button, gallery, img} = thumb;
      const pictures = [...gallery.querySelectorAll('img')];
      button.click();
      open(gallery, pictures, img, button);
      return;
    }
    if (event.key === 'Escape') close();
    else if (event.key === 'ArrowRight') step(1);
    else if (event.key === 'ArrowLeft') step(-1);
    else if (event.key === 'Tab') { box.focus(); }  // the arrow keys and Esc do what the buttons do
    else return;
    event.preventDefault();
    event.stopPropagation();
  }, true);
  // Space activates a button when the key comes up: that click has already been made on the way down.
  document.addEventListener('keyup', (event) => {
    if (event.key === ' ' && thumbnail(event.target)) { event.preventDefault(); event.stopPropagation(); }
  }, true);
  box.addEventListener('click', (event) => {
    const go = event.target.closest && event.target.closest('button[data-go]');
    if (go) {
      event.stopPropagation();
      if (go.dataset.go === 'close') close(); else { step(+go.dataset.go); box.focus(); }
    } else if (event.target === box) close();
  });

  // ---- the Edit page's before/after slider: alt texts, and a handle the keyboard can reach and move.
  // Gradio's handle follows only the mouse (d3-drag): the arrow keys drag it by 5 % of the picture.
  const COMPARE = '#edit-compare';
  const dressCompare = () => {
    const root = document.querySelector(COMPARE);
    if (!root) return;
    const pictures = root.querySelectorAll('img[data-testid=imageslider-image]');
    const w = words();
    if (pictures[0] && pictures[0].alt !== w['compare.before']) pictures[0].alt = w['compare.before'];
    if (pictures[1] && pictures[1].alt !== w['compare.after']) pictures[1].alt = w['compare.after'];
    const handle = root.querySelector('[data-testid=slider]');
    if (handle && handle.getAttribute('aria-label') !== w['compare.handle']) {
      handle.tabIndex = 0;
      handle.setAttribute('role', 'slider');
      handle.setAttribute('aria-label', w['compare.handle']);
      handle.setAttribute('aria-valuemin', '0');
      handle.setAttribute('aria-valuemax', '100');
      handle.setAttribute('aria-valuenow', '50');
    }
  };
  new MutationObserver(dressCompare).observe(document.body, {subtree: true, childList: true});
  const mouse = (type, x, y) => new MouseEvent(type, {bubbles: true, cancelable: true, view: window,
                                                      clientX: x, clientY: y, button: 0});
  document.addEventListener('keydown', (event) => {
    const handle = event.target.closest && event.target.closest(COMPARE + ' [data-testid=slider]');
    const picture = handle && document.querySelector(COMPARE + ' img[data-testid=imageslider-image]');
    if (!picture) return;
    const area = picture.getBoundingClientRect();
    const at = handle.getBoundingClientRect();
    const x = at.left + at.width / 2;
    const by = {ArrowLeft: -0.05, ArrowRight: 0.05, Home: -1, End: 1}[event.key];
    if (by === undefined) return;
    event.preventDefault();
    const to = Math.min(area.right - 1, Math.max(area.left + 1, x + by * area.width));
    const y = at.top + at.height / 2;
    handle.dispatchEvent(mouse('mousedown', x, y));
    window.dispatchEvent(mouse('mousemove', to, y));
    window.dispatchEvent(mouse('mouseup', to, y));
    const percent = Math.round(((to - area.left) / area.width) * 100);
    handle.setAttribute('aria-valuenow', String(percent));
  }, true);

  // ---- drag a picture into a slot
  const carries = (event) => event.dataTransfer && [...event.dataTransfer.types].includes(TYPE);
  document.addEventListener('dragstart', (event) => {
    const img = event.target.closest && event.target.closest('img');
    if (!img || !img.closest(GALLERIES)) return;
    event.dataTransfer.setData(TYPE, img.src);
    event.dataTransfer.setData('text/uri-list', img.src);
    event.dataTransfer.effectAllowed = 'copy';
  }, true);
  document.addEventListener('dragover', (event) => {
    if (!carries(event)) return;
    const tab = event.target.closest && event.target.closest('button[role=tab]');
    if (tab && tab.getAttribute('aria-selected') !== 'true') tab.click();
    if (event.target.closest && event.target.closest(SLOTS)) {
      event.preventDefault();
      event.stopPropagation();
      event.dataTransfer.dropEffect = 'copy';
    }
  }, true);
  const fileInput = async (slot) => {
    for (let tries = 0; tries < 20; tries++) {
      const input = slot.querySelector('input[type=file]');
      if (input) return input;
      // Should a filled slot have no file input, clear it first (Gradio's "Remove Image" button).
      const clear = slot.querySelector('button[aria-label="Remove Image"]');
      if (clear && tries === 0) clear.click();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return null;
  };
  document.addEventListener('drop', async (event) => {
    const slot = event.target.closest && event.target.closest(SLOTS);
    if (!slot || !carries(event)) return;
    event.preventDefault();
    event.stopPropagation();
    const url = event.dataTransfer.getData(TYPE);
    const blob = await (await fetch(url)).blob();
    const input = await fileInput(slot);
    if (!input) return;
    const files = new DataTransfer();
    files.items.add(new File([blob], 'picture.png', {type: blob.type || 'image/png'}));
    input.files = files.files;
    input.dispatchEvent(new Event('change', {bubbles: true}));
  }, true);
}
"""

CSS = """
#is-lightbox { position: fixed; inset: 0; z-index: 1000; background: rgba(0, 0, 0, 0.88);
  display: flex; align-items: center; justify-content: center; flex-direction: column; }
#is-lightbox[hidden] { display: none; }
/* Scaled to the window both ways: a small picture (a 64 px test, a latent preview) is shown large too. */
#is-lightbox img { width: 94vw; height: 84vh; object-fit: contain; }
#is-lightbox .is-lightbox-count { color: #fff; margin-top: 0.5rem; font-variant-numeric: tabular-nums; }
#is-lightbox button { position: absolute; color: #fff; background: rgba(0, 0, 0, 0.55);
  border: 2px solid #fff; border-radius: 50%; width: 3rem; height: 3rem; font-size: 2rem; line-height: 1;
  cursor: pointer; display: flex; align-items: center; justify-content: center; padding: 0 0 0.2rem; }
#is-lightbox button:hover, #is-lightbox button:focus-visible { background: #c2410c; }
#is-lightbox .is-lightbox-close { top: 1rem; right: 1rem; }
#is-lightbox .is-lightbox-prev { left: 1rem; top: calc(50% - 1.5rem); }
#is-lightbox .is-lightbox-next { right: 1rem; top: calc(50% - 1.5rem); }
"""


@dataclass
class ResultActions:
    """*Edit this* / *Vary this* / *Upscale ×2* under a result gallery, and which picture is chosen."""

    edit_this: Any
    vary_this: Any
    chosen: Any
    upscale_this: Any = None


def result_actions(ctx: UIContext, prefix: str) -> ResultActions:
    """The two buttons, built where they should appear (under the page's result gallery).

    They start disabled: until the page has a result there is nothing for them to act on (see
    :func:`has_result`, wired in :func:`wire`).
    """
    import gradio as gr

    with gr.Row():
        edit_this = gr.Button(
            ctx.key("chain.edit_this"), size="sm", interactive=False, elem_id=f"{prefix}-edit-this"
        )
        vary_this = gr.Button(
            ctx.key("chain.vary_this"), size="sm", interactive=False, elem_id=f"{prefix}-vary-this"
        )
        upscale_this = gr.Button(
            ctx.key("chain.upscale_this"), size="sm", interactive=False, elem_id=f"{prefix}-upscale-this"
        )
    return ResultActions(edit_this, vary_this, gr.State(0), upscale_this)


def scripts(ctx: UIContext) -> Any:
    """An invisible component that installs the lightbox and drag-and-drop handlers on the page."""
    import gradio as gr

    return gr.HTML("", elem_id="is-chain", padding=False, js_on_load=script(ctx))


def script(ctx: UIContext) -> str:
    """:data:`SCRIPT` with the galleries, the slots and the lightbox buttons' names in both languages."""
    import json

    words = {lang: {key: ctx.texts.t(key, lang) for key in SCRIPT_WORDS} for lang in LANGUAGES}
    return (
        SCRIPT.replace("__GALLERIES__", GALLERIES)
        .replace("__SLOTS__", SLOTS)
        .replace("__WORDS__", json.dumps(words, ensure_ascii=False))
    )


def has_result(gallery_value: Any) -> tuple[int, Any, Any, Any]:
    """(the chosen index, Edit this, Vary this, Upscale) after the result gallery changed.

    A new set of results starts at its first picture, and the buttons become usable. Taking the results
    off (a job's start, a refused request) disables them in the same update (``JobPanel.cleared``):
    a gallery emptied by an update sends no change event.
    """
    import gradio as gr

    usable = bool(list(gallery_value or []))
    return 0, gr.Button(interactive=usable), gr.Button(interactive=usable), gr.Button(interactive=usable)


def picture_of(gallery_value: Any, index: int | None) -> str | None:
    """The file path of the gallery's chosen picture (the first when none was chosen)."""
    items = list(gallery_value or [])
    if not items:
        return None
    index = index if isinstance(index, int) and 0 <= index < len(items) else 0
    item = items[index]
    if isinstance(item, (list, tuple)):
        item = item[0]
    if isinstance(item, dict):
        item = item.get("path") or (item.get("image") or {}).get("path")
    return str(item) if item else None


def to_edit(path: str | None) -> tuple[Any, Any]:
    """(Picture 1's new value, the tabs' new selection)."""
    import gradio as gr

    if not path:
        return gr.skip(), gr.skip()
    return path, gr.Tabs(selected="edit")


def to_vary(path: str | None) -> tuple[Any, Any, Any, Any]:
    """(the picture to load next, the size choice, the opened accordion, the tabs' new selection).

    The picture goes into the editor in a second step (:func:`start_picture`): the editor inside a
    closed accordion is not drawn yet, and a value sent before it is drawn is lost.
    """
    import gradio as gr

    if not path:
        return None, gr.skip(), gr.skip(), gr.skip()
    return path, gr.Dropdown(value=SOURCE_SIZE), gr.Accordion(open=True), gr.Tabs(selected="generate")


def start_picture(path: str | None) -> Any:
    """The image editor's value with ``path`` as its background and nothing painted."""
    import gradio as gr

    if not path:
        return gr.skip()
    return {"background": path, "layers": [], "composite": path}


def wire(
    ctx: UIContext, tabs: Any, generate: "GeneratePage", edit: "EditPage", history: "HistoryPage"
) -> None:
    """Edit this / Vary this / Upscale on both result galleries and in History."""
    import gradio as gr

    picture_1 = edit.images[0]
    chosen_picture = gr.State(None)
    vary_outputs = [chosen_picture, generate.size, generate.source_box, tabs]

    def then_load(event: Any) -> None:
        event.then(start_picture, chosen_picture, generate.source, queue=False)

    for panel, actions, page_lang in (
        (generate.panel, generate.actions, generate.lang),
        (edit.panel, edit.actions, edit.lang),
    ):

        def chose(evt: gr.SelectData) -> int:
            return evt.index if isinstance(evt.index, int) else 0

        panel.gallery.select(chose, None, actions.chosen, queue=False)
        panel.gallery.change(
            has_result,
            panel.gallery,
            [actions.chosen, actions.edit_this, actions.vary_this, actions.upscale_this],
            queue=False,
            show_progress="hidden",
        )
        actions.edit_this.click(
            lambda value, index: to_edit(picture_of(value, index)),
            [panel.gallery, actions.chosen],
            [picture_1, tabs],
            queue=False,
        )
        vary = actions.vary_this.click(
            lambda value, index: to_vary(picture_of(value, index)),
            [panel.gallery, actions.chosen],
            vary_outputs,
            queue=False,
        )
        then_load(vary)
        wire_upscale(
            ctx,
            panel,
            actions.upscale_this.click,
            [panel.gallery, actions.chosen, page_lang],
            picture_of,
            name=f"{panel.page}_upscale",
        )

    def history_path(entry_id: str | None) -> str | None:
        entry = ctx.backend.history_entry(entry_id) if entry_id else None
        return str(entry.path) if entry is not None else None

    history.edit_this.click(
        lambda i: to_edit(history_path(i)), history.selected, [picture_1, tabs], queue=False
    )
    then_load(
        history.vary_this.click(
            lambda i: to_vary(history_path(i)), history.selected, vary_outputs, queue=False
        )
    )
    # History's Upscale is followed on the Generate page, which opens.
    history.upscale_this.click(lambda: gr.Tabs(selected="generate"), None, tabs, queue=False)
    wire_upscale(
        ctx,
        generate.panel,
        history.upscale_this.click,
        [history.selected, generate.lang],
        history_path,
        name="history_upscale",
    )
