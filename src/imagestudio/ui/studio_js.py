"""The studio page's own script: keyboard, hints on the run buttons, dropdowns, scrolling, file checks.

It is added to the top of the page's ``<head>`` (with the language script, see
:mod:`imagestudio.ui.early_script`) and only installs listeners on ``document``: Gradio builds and
rebuilds the widgets afterwards, so everything is looked up by ``elem_id`` when an event happens.

- Ctrl+Enter / ⌘+Enter runs the page the focus is on (Enter keeps adding a line to the prompt); the
  run buttons say so in their tooltip.
- The language link of the language on screen gets ``aria-current`` (and its style).
- Tab out of a dropdown closes its list (Gradio opens it on focus and left it open).
- On a phone, pressing Generate/Edit scrolls the result area into view, and tapping a History picture
  scrolls to its details; an error line or a question (Download's) that appears off screen (below the
  fold) is scrolled to.
- A starting picture the browser cannot decode is reported to the page (``#gen-source-bad``), which
  then explains it under the control and refuses to run.
"""

from __future__ import annotations

STUDIO_SCRIPT = """<script>
(() => {
  const RUN = {gen: "gen-run", edit: "edit-run"};
  const HINT = "Ctrl+Enter (\\u2318+Enter)";
  const visible = (el) => !!el && el.offsetParent !== null;
  const pageOf = (el) => {
    for (let node = el; node && node.id !== undefined; node = node.parentElement) {
      const m = /^(gen|edit)-/.exec(node.id || "");
      if (m) return m[1];
    }
    return null;
  };
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !(e.ctrlKey || e.metaKey) || e.isComposing) return;
    let page = pageOf(e.target);
    if (!page) page = Object.keys(RUN).find((p) => visible(document.getElementById(RUN[p])));
    const button = page && document.getElementById(RUN[page]);
    if (!visible(button)) return;
    e.preventDefault();
    e.stopPropagation();
    if (!button.disabled) button.click();
  }, true);
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Tab") return;
    const box = e.target;
    if (!box || box.getAttribute("role") !== "combobox") return;
    // Gradio's own key handler runs a tick later and opens the list again after the focus moved on
    // (its blur had just closed it): Tab only moves the focus, so keep the key from that handler.
    e.stopPropagation();
  }, true);
  const hint = () => {
    for (const id of Object.values(RUN)) {
      const button = document.getElementById(id);
      if (button && button.title !== HINT) {
        button.title = HINT;
        button.setAttribute("aria-keyshortcuts", "Control+Enter Meta+Enter");
      }
    }
  };
  document.addEventListener("click", (e) => {
    const button = e.target && e.target.closest && e.target.closest("#gen-run, #edit-run");
    if (!button || window.innerWidth > 820) return;
    const column = document.getElementById(button.id.replace("-run", "-result-col"));
    if (column) setTimeout(() => column.scrollIntoView({block: "start", behavior: "smooth"}), 150);
  }, true);
  // The link of the language on screen is marked (Gradio keeps <html lang> equal to it).
  const markLanguage = () => {
    const tag = (document.documentElement.lang || navigator.language || "en").toLowerCase();
    const current = tag.split("-")[0] === "ru" ? "ru" : "en";
    for (const link of document.querySelectorAll("#is-lang a[data-lang]")) {
      const want = link.dataset.lang === current;
      if (want !== (link.getAttribute("aria-current") === "true")) {
        if (want) link.setAttribute("aria-current", "true"); else link.removeAttribute("aria-current");
      }
    }
  };
  // When each error line or question was first shown: for a moment after, the blocks around it may
  // still grow (a button's new, longer label) and push it out of the window again, so it is re-checked.
  const seen = new WeakMap();
  const SETTLE_MS = 1500;
  // On a phone the details of a History picture are far below the gallery: a tap on a picture shows
  // them (not while "Select several" is on, where a tap only marks the picture).
  // Scrolled at once, and again when the details arrive (an instant scroll: a smooth one was seen cut
  // short by the page redrawing under it on a busy machine).
  let detailsWanted = false;
  const showDetails = () => {
    const details = document.getElementById("hist-image");
    if (details) details.scrollIntoView({block: "start"});
  };
  document.addEventListener("click", (e) => {
    const thumb = e.target && e.target.closest && e.target.closest("#hist-gallery button.thumbnail-item");
    if (!thumb || window.innerWidth > 820) return;
    const multi = document.querySelector("#hist-multi input[type=checkbox]");
    if (multi && multi.checked) return;
    detailsWanted = true;
    setTimeout(showDetails, 150);
  }, true);
  const detailsArrived = () => {
    const table = document.querySelector("#hist-details table");
    if (detailsWanted && table) { detailsWanted = false; showDetails(); }
  };
  const showErrors = () => {
    const now = performance.now();
    for (const error of document.querySelectorAll(".is-error, .is-question")) {
      let first = seen.get(error);
      if (first === undefined) {
        // A line drawn inside a block that is still hidden has no box yet: it is measured (and
        // scrolled to) on a later change, once it is shown.
        if (error.getBoundingClientRect().height === 0) continue;
        first = now;
        seen.set(error, first);
      }
      if (now - first > SETTLE_MS) continue;
      // A question is shown whole, with its buttons (its block is the .is-ask group around it).
      const whole = error.closest(".is-ask") || error;
      const shown = whole.getBoundingClientRect();
      if (shown.bottom > window.innerHeight || shown.top < 0) whole.scrollIntoView({block: "center"});
    }
  };
  const reportSource = (file) => {
    const box = document.querySelector("#gen-source-bad textarea, #gen-source-bad input");
    if (!box || !file) return;
    const set = (value) => {
      const proto = Object.getPrototypeOf(box);
      Object.getOwnPropertyDescriptor(proto, "value").set.call(box, value);
      box.dispatchEvent(new Event("input", {bubbles: true}));
    };
    createImageBitmap(file).then((bitmap) => { bitmap.close(); set(""); }, () => set(file.name));
  };
  document.addEventListener("change", (e) => {
    const input = e.target;
    if (input && input.type === "file" && input.closest && input.closest("#gen-source")) {
      reportSource(input.files && input.files[0]);
    }
  }, true);
  document.addEventListener("drop", (e) => {
    if (e.target && e.target.closest && e.target.closest("#gen-source")) {
      reportSource(e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0]);
    }
  }, true);
  const start = () => {
    hint();
    markLanguage();
    new MutationObserver(() => { hint(); markLanguage(); detailsArrived(); })
      .observe(document.body, {subtree: true, childList: true});
    new MutationObserver(markLanguage)
      .observe(document.documentElement, {attributes: true, attributeFilter: ["lang"]});
    // Gradio's HTML blocks insert their markup and set its classes in separate changes: an error line
    // becomes an ".is-error" by a class change, so class changes are watched too; a label's new text
    // (characterData) can move a line just shown.
    new MutationObserver(showErrors).observe(document.body, {
      subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["class"],
    });
  };
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
</script>"""
