"""The page's own CSS and the small script that lets a link choose the language."""

from __future__ import annotations

CSS = """
.is-header { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; }
.is-header h1 { margin: 0; font-size: 1.6rem; }
.is-header p { margin: 0.2rem 0 0; opacity: 0.75; }
.is-lang a { margin-left: 0.6rem; text-decoration: none; }
/* The language on screen (marked by the page's script, see studio_js). */
.is-lang a[aria-current="true"] { font-weight: 700; text-decoration: underline; text-underline-offset: 0.25em;
  text-decoration-thickness: 2px; }
.is-run-hint { margin-top: -0.3rem; padding: 0 0.2rem; }
.is-run-hint p { margin: 0; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
.is-progress { margin: 0.25rem 0; }
.is-progress-track { height: 0.9rem; border-radius: 0.45rem; background: var(--neutral-200);
  overflow: hidden; }
.dark .is-progress-track { background: var(--neutral-700); }
.is-progress-fill { height: 100%; background: var(--color-accent); transition: width 0.2s linear; }
.is-progress[data-state="cancelled"] .is-progress-fill,
.is-progress[data-state="failed"] .is-progress-fill { background: var(--neutral-400); }
.is-progress-text { margin-top: 0.3rem; font-variant-numeric: tabular-nums; }
.is-error { color: var(--error-text-color, #b91c1c); background: var(--error-background-fill, #fef2f2);
  border: 1px solid var(--error-border-color, #fecaca); border-radius: 0.4rem; padding: 0.35rem 0.6rem;
  margin-top: 0.25rem; }
.is-note { padding: 0.35rem 0.6rem; border-radius: 0.4rem; background: var(--neutral-100); }
.dark .is-note { background: var(--neutral-800); }
.is-note[data-kind="ok"] { border-left: 4px solid #16a34a; }
.is-note[data-kind="warn"] { border-left: 4px solid #d97706; }
.is-meter { margin: 0.4rem 0 0.8rem; }
.is-meter-label { font-weight: 600; margin-bottom: 0.2rem; }
.is-meter-fill { height: 100%; background: #16a34a; }
.is-meter[data-level="mid"] .is-meter-fill { background: #d97706; }
.is-meter[data-level="high"] .is-meter-fill { background: #dc2626; }
.is-meter-caption { font-size: 0.9em; opacity: 0.8; font-variant-numeric: tabular-nums; }
.is-table { border-collapse: collapse; width: 100%; }
.is-table th { text-align: left; padding: 0.2rem 0.8rem 0.2rem 0; white-space: nowrap; vertical-align: top;
  font-weight: 600; }
.is-table td { padding: 0.2rem 0; word-break: break-word; }
.is-checks td.is-mark { width: 1.5rem; font-weight: 700; text-align: center; }
.is-checks tr[data-status="ok"] td.is-mark { color: #16a34a; }
.is-checks tr[data-status="warn"] td.is-mark { color: #d97706; }
.is-checks tr[data-status="fail"] td.is-mark { color: #dc2626; }
/* Slots (error lines, progress, notes) take no room while empty. */
div.block.is-slot:has(.prose:empty) { display: none !important; }
.is-lang .is-logout-form { display: inline; margin: 0; }
.is-lang .is-logout { margin-left: 1.4rem; opacity: 0.8; background: none; border: 0; padding: 0;
  font: inherit; color: inherit; cursor: pointer; }
html:not([lang|="ru"]) .is-logout [lang="ru"], html[lang|="ru"] .is-logout [lang="en"] { display: none; }
"""

#: Runs before Gradio starts (see :mod:`imagestudio.ui.early_script`): ``?lang=ru`` / ``?lang=en``
#: (remembered in localStorage) overrides the browser's language, which Gradio reads to pick the
#: translation. Without either, the browser's language decides.
LANGUAGE_SCRIPT = """<script>
(() => {
  const supported = ["en", "ru"];
  let lang = null;
  try {
    lang = new URL(window.location.href).searchParams.get("lang");
    if (supported.includes(lang)) { localStorage.setItem("imagestudio.lang", lang); }
    else { lang = localStorage.getItem("imagestudio.lang"); }
  } catch (e) { lang = null; }
  if (supported.includes(lang)) {
    Object.defineProperty(navigator, "language", { get: () => lang, configurable: true });
    Object.defineProperty(navigator, "languages", { get: () => [lang], configurable: true });
  }
})();
</script>"""


def lang_js(inputs: int) -> str:
    """A pre-event script that puts the page's current language into the last of ``inputs`` values.

    Gradio's translation layer (svelte-i18n) keeps ``<html lang>`` equal to the language on screen, also
    after a switch in Gradio's settings, so server-made text follows what the user sees.
    """
    return (
        f"(...args) => {{ const a = args.slice(0, {inputs}); "
        f"a[{inputs - 1}] = document.documentElement.lang || navigator.language || 'en'; return a; }}"
    )
