"""How a person operates the studio's Gradio widgets, written once for the browser tests.

Every locator starts from an ``elem_id`` the pages set on purpose (``#gen-prompt`` …), never from
Gradio's generated class names.
"""

from __future__ import annotations

from typing import Any

Page = Any

#: Records every state the progress bar of ``#<prefix>-progress`` goes through, from the moment it is
#: installed: a finished job may leave only its last state on screen, so the test watches the DOM.
WATCH_PROGRESS_JS = """
(prefix) => {
  const seen = [];
  window.__progress = window.__progress || {};
  window.__progress[prefix] = seen;
  const root = document.querySelector('#' + prefix + '-progress');
  const record = () => {
    const bar = root.querySelector('.is-progress');
    if (!bar) return;
    const entry = {state: bar.dataset.state, step: +bar.dataset.step, steps: +bar.dataset.steps,
                   text: bar.innerText};
    const last = seen[seen.length - 1];
    if (!last || last.state !== entry.state || last.step !== entry.step) seen.push(entry);
  };
  new MutationObserver(record).observe(root, {subtree: true, childList: true, attributes: true,
                                              characterData: true});
  record();
}
"""


def fill_text(page: Page, elem_id: str, text: str) -> None:
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input[type=text]").first
    box.fill(text)


def set_number(page: Page, elem_id: str, value: float) -> None:
    """A gr.Number, or the number box of a gr.Slider."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Tab")


def choose(page: Page, elem_id: str, option: str) -> None:
    """Pick ``option`` (its visible text) in a gr.Dropdown."""
    page.locator(f"#{elem_id} input[role=combobox]").click()
    page.locator("ul[role=listbox] li[role=option]", has_text=option).first.click()


def custom_size(page: Page, width: int, height: int, label: str = "Custom size…") -> None:
    """Generate's size list set to its custom entry (``label``, in the page's language) and the size typed."""
    choose(page, "gen-size", label)
    set_number(page, "gen-width", width)
    set_number(page, "gen-height", height)


def add_edit_pictures(page: Page, *paths: Any) -> None:
    """Put the pictures at ``paths`` into the Edit page's slots in order (Picture 1, 2, …) and wait until
    the last one shows."""
    for slot, path in enumerate(paths, start=1):
        page.locator(f"#edit-image-{slot} input[type=file]").set_input_files(str(path))
    page.locator(f"#edit-image-{len(paths)} img").wait_for()


def check_radio(page: Page, elem_id: str, label: str) -> None:
    page.locator(f"#{elem_id} label", has_text=label).first.click()


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


#: What each page shows once its tab is open and the tab's own event has answered (History lists its
#: pictures, the System page fills its tables on the tab's select): the thing to wait for after a click.
TAB_DRAWN = {
    "generate": "#gen-run",
    "edit": "#edit-run",
    "history": "#hist-summary .is-note",
    "system": "#sys-models tr[data-model]",
}

#: True once the fonts are in and no finite animation or transition runs (an endless spinner does not
#: count): colours and boxes read now are the ones a person sees, not a frame of a fade.
SETTLED_JS = """() => document.fonts.status === 'loaded' && document.getAnimations().every(
  (a) => a.playState !== 'running' || !a.effect || a.effect.getComputedTiming().endTime === Infinity)"""


def wait_settled(page: Page, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(SETTLED_JS, timeout=timeout_ms)


#: The box of ``selector`` once it is the same two frames running (a smooth scroll or a late picture
#: no longer moves it); null until then. Polled each frame by ``wait_for_function``.
STEADY_BOX_JS = """(selector) => {
  const el = document.querySelector(selector);
  const r = el ? el.getBoundingClientRect() : null;
  const key = r ? [r.x, r.y, r.width, r.height].join() : null;
  window.__steadyBoxes = window.__steadyBoxes || {};
  const steady = key !== null && window.__steadyBoxes[selector] === key;
  window.__steadyBoxes[selector] = key;
  return steady ? {x: r.x, y: r.y, width: r.width, height: r.height} : null;
}"""


def steady_box(page: Page, selector: str, timeout_ms: int = 30_000) -> dict[str, float]:
    return page.wait_for_function(STEADY_BOX_JS, arg=selector, timeout=timeout_ms).json_value()


def wait_no_pending(page: Page, elem_id: str, timeout_ms: int = 30_000) -> None:
    """Wait until no event writing to ``#elem_id`` is on its way: Gradio shows its status tracker on an
    event's outputs from the moment the event is sent until its answer is drawn (``show_progress``
    other than "hidden"), and hides it (class ``hide``) otherwise."""
    page.wait_for_function(
        "(id) => !document.querySelector('#' + id + ' [data-testid=status-tracker]:not(.hide)')",
        arg=elem_id,
        timeout=timeout_ms,
    )


def wait_tab_drawn(page: Page, tab: str, timeout_ms: int = 60_000) -> None:
    """Wait until the page of ``tab`` (a key of :data:`TAB_DRAWN`) is drawn with its content, and still."""
    page.locator(TAB_DRAWN[tab]).first.wait_for(state="visible", timeout=timeout_ms)
    wait_settled(page)


def watch_progress(page: Page, prefix: str) -> None:
    page.evaluate(WATCH_PROGRESS_JS, prefix)


def progress_seen(page: Page, prefix: str) -> list[dict[str, Any]]:
    return page.evaluate("(prefix) => window.__progress[prefix]", prefix)


def gallery_images(page: Page, elem_id: str) -> Any:
    return page.locator(f"#{elem_id} img")


def wait_progress_state(page: Page, prefix: str, states: tuple[str, ...], timeout_ms: int = 60_000) -> str:
    """Wait until the progress bar shows one of ``states``; returns the one it shows."""
    selector = ", ".join(f"#{prefix}-progress .is-progress[data-state={s}]" for s in states)
    page.locator(selector).first.wait_for(timeout=timeout_ms)
    return page.locator(f"#{prefix}-progress .is-progress").get_attribute("data-state")


def run_and_wait(page: Page, prefix: str, timeout_ms: int = 90_000, button: str | None = None) -> str:
    """Press the page's run button (or ``button``, another control whose job ``prefix``'s panel follows)
    and wait for *this* job to end; returns done / failed / cancelled.

    A previous job's final state may still be on screen, so this waits for the bar to show a job in
    progress first, then for the state it ends in.
    """
    watch_progress(page, prefix)
    page.locator(f"#{button or prefix + '-run'}").click()
    handle = page.wait_for_function(
        """(prefix) => {
          const seen = window.__progress[prefix] || [];
          const start = seen.findIndex(e => e.state === 'queued' || e.state === 'running');
          if (start < 0) return null;
          const end = seen.slice(start).find(e => ['done', 'failed', 'cancelled'].includes(e.state));
          return end ? end.state : null;
        }""",
        arg=prefix,
        timeout=timeout_ms,
    )
    return handle.json_value()


def paint_stroke(page: Page, editor: str = "gen-source") -> dict[str, float]:
    """Paint a horizontal stroke across the middle of the image editor ``editor`` (an inpaint mask);
    returns the canvas's box as painted."""
    page.locator(f"#{editor} button[aria-label=Brush]").click()
    # The blocks above can push the editor below the fold, and the mouse only paints inside the
    # window: bring the canvas into view before measuring it.
    canvas_locator = page.locator(f"#{editor} canvas").first
    canvas_locator.scroll_into_view_if_needed()
    canvas = canvas_locator.bounding_box()
    assert canvas is not None, f"the {editor} canvas is not shown"
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    page.mouse.move(cx - 60, cy)
    page.mouse.down()
    for i in range(13):
        page.mouse.move(cx - 60 + i * 10, cy)
    page.mouse.up()
    return canvas
