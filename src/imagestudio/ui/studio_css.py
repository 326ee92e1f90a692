"""The studio's look beyond Gradio's theme: whole results, readable contrast, focus, phone layout.

Kept apart from :mod:`imagestudio.ui.style` (the page's widgets) so the theme fixes live in one place.
Colours are chosen for a contrast of at least 4.5:1 (WCAG AA) against their background in the light
and the dark theme; ``tests/ui/test_studio_fixes_browser.py`` measures it on every page.
"""

from __future__ import annotations

STUDIO_CSS = """
/* Readable secondary text and buttons (Gradio's defaults are ~2-3:1). */
.gradio-container {
  --block-info-text-color: #4b5563;
  --body-text-color-subdued: #4b5563;
  --input-placeholder-color: #6b7280;
  --block-label-text-color: #374151;
  --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412;
  --button-primary-text-color: #ffffff;
  --button-primary-text-color-hover: #ffffff;
  --button-secondary-text-color: #1f2937;
  --button-cancel-background-fill: #b91c1c;
  --button-cancel-background-fill-hover: #991b1b;
  --button-cancel-text-color: #ffffff;
  --button-cancel-text-color-hover: #ffffff;
  --link-text-color: #1d4ed8;
  --link-text-color-hover: #1e40af;
  --link-text-color-visited: #1d4ed8;
}
.dark .gradio-container, .gradio-container.dark {
  --block-info-text-color: #d1d5db;
  --body-text-color-subdued: #d1d5db;
  --input-placeholder-color: #9ca3af;
  --block-label-text-color: #e5e7eb;
  --button-primary-background-fill: #c2410c;
  --button-primary-background-fill-hover: #9a3412;
  --button-secondary-text-color: #f3f4f6;
  --link-text-color: #93c5fd;
  --link-text-color-hover: #bfdbfe;
  --link-text-color-visited: #93c5fd;
}
.gradio-container button:disabled, .gradio-container button[disabled] {
  opacity: 1 !important; background: #e5e7eb !important; color: #374151 !important;
  border-color: #d1d5db !important; cursor: not-allowed;
}
.dark .gradio-container button:disabled, .dark .gradio-container button[disabled] {
  background: #374151 !important; color: #e5e7eb !important; border-color: #4b5563 !important;
}
.is-lang a { color: var(--link-text-color); }
#is-tabs button[role=tab][aria-selected=true] { color: #c2410c; }
.dark #is-tabs button[role=tab][aria-selected=true] { color: #fdba74; }
.is-checks tr[data-status="ok"] td.is-mark { color: #15803d; }
.is-checks tr[data-status="warn"] td.is-mark { color: #b45309; }
.is-checks tr[data-status="fail"] td.is-mark { color: #b91c1c; }
.dark .is-checks tr[data-status="ok"] td.is-mark { color: #4ade80; }
.dark .is-checks tr[data-status="warn"] td.is-mark { color: #fbbf24; }
.dark .is-checks tr[data-status="fail"] td.is-mark { color: #f87171; }
.is-header p, .is-meter-caption { opacity: 1; }
.is-lang .is-logout { opacity: 1; color: var(--link-text-color); }
/* Visible focus for keyboard users on every control. */
.gradio-container :is(button, a, input, textarea, select, [role=tab], [tabindex]):focus-visible {
  outline: 3px solid #2563eb !important; outline-offset: 2px;
}
.dark .gradio-container :is(button, a, input, textarea, select, [role=tab], [tabindex]):focus-visible {
  outline-color: #93c5fd !important;
}
/* The whole result is visible: a picture is scaled into its box, never cut (1:1, 3:2, 2:3). */
.is-results .grid-wrap img, .is-results .thumbnail-item img, .is-results .preview img,
.is-results .media-button img {
  object-fit: contain !important; max-width: 100%; max-height: 100%;
}
.is-results .thumbnail-item { aspect-ratio: auto !important; height: auto !important;
  max-height: calc(var(--is-result-h, 520px) - 60px); }
.is-results .thumbnail-item img { width: 100% !important; height: 100% !important;
  max-height: calc(var(--is-result-h, 520px) - 60px); }
.is-results .grid-wrap { overflow-y: auto; }
/* The live preview is small (latent size): drawn smooth and as large as the result box it stands in. */
.is-preview img { width: 100% !important; height: 100% !important; object-fit: contain !important;
  image-rendering: auto; }
/* First-run banner and notes. */
.is-banner { padding: 0.6rem 0.8rem; border-left: 4px solid #c2410c; background: var(--neutral-50);
  border-radius: 0.4rem; }
.dark .is-banner { background: var(--neutral-800); }
.is-banner p { margin: 0.2rem 0; }
.is-banner code { font-size: 0.9em; }
.is-note + .is-note { margin-top: 0.3rem; }
/* Gradio's own timer ("processing | 0.1/0.7s") is English on every page: the pages show their own. */
.gradio-container .progress-text, .gradio-container .meta-text, .gradio-container .meta-text-center,
.gradio-container .eta-bar, .gradio-container .timer { display: none !important; }
/* Tabs: all four stay visible (wrapping on a phone) instead of hiding behind an overflow menu. */
/* Gradio measures the tab labels in a hidden copy and moves those that do not fit into a "•••" menu;
   measured small, every tab stays in the tab list, which wraps onto a second line when it must. */
#is-tabs .tab-container.visually-hidden button { font-size: 1px !important; padding: 0 !important;
  min-width: 0 !important; }
#is-tabs .tab-wrapper, #is-tabs div[role=tablist] { flex-wrap: wrap; height: auto; overflow: visible; }
#is-tabs .overflow-menu { display: none !important; }
/* Sliders side by side line up (True CFG and Steps): the number box at the top, the slider at the
   bottom, however long each one's explanation is. */
.gradio-container .form > .block:has(input[type=range]) > .wrap:not([data-testid=status-tracker]) {
  height: 100%; display: flex; flex-direction: column; justify-content: space-between; }
/* A slider's number box sits in a clipping frame: its focus ring is drawn inside the box (outside it
   was cut down to a bar at the box's right edge). */
.gradio-container .tab-like-container input[type=number]:focus-visible { outline-offset: -3px !important; }
/* Dropdown text never runs under the arrow. */
.gradio-container input[role=combobox] { padding-right: 2rem !important; text-overflow: ellipsis; }
@media (max-width: 640px) {
  .is-header h1 { font-size: 1.3rem; }
  /* Model and size each get the whole width: side by side their names were cut to "Tiny Z-Im…". */
  #gen-model, #gen-size { min-width: 100% !important; }
  /* Sliders too: two side by side left ~160 px each, and a long explanation pushed one far below. */
  #gen-steps, #gen-count, #edit-true-cfg, #edit-steps { min-width: 100% !important; }
  #is-tabs button[role=tab] { padding-left: 0.55rem; padding-right: 0.55rem; }
}
"""
