"""A colour-contrast check run inside the page (WCAG 2 AA), as axe-core's ``color-contrast`` rule does.

For every visible element with its own text: the text colour against the background behind it (the
nearest opaque ancestor background, with semi-transparent layers blended), the WCAG contrast ratio, and
the minimum it needs (4.5:1, or 3:1 for large text: 24 px, or 18.66 px bold). Disabled controls are
included on purpose (the studio keeps them readable). Elements over a picture or a gradient are
skipped, as axe reports them for a person to judge.
"""

from __future__ import annotations

from typing import Any

CONTRAST_JS = r"""
(root) => {
  const parse = (c) => {
    const m = /rgba?\(([^)]+)\)/.exec(c || "");
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const blend = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const backdrop = (el) => {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.backgroundImage && s.backgroundImage !== "none") return null;
      const c = parse(s.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let color = [255, 255, 255, 1];
    const page = parse(getComputedStyle(document.body).backgroundColor);
    if (page && page[3] >= 1) color = page;
    for (let i = layers.length - 1; i >= 0; i--) color = blend(layers[i], color);
    return color;
  };
  const problems = [];
  let checked = 0;
  const scope = document.querySelector(root) || document.body;
  for (const el of scope.querySelectorAll("*")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const skip = ["hidden", "file", "range", "checkbox", "radio"];
    const field = (el.tagName === "INPUT" && !skip.includes(el.type) && el.value)
      || (el.tagName === "TEXTAREA" && el.value);
    if (!own && !field) continue;
    const s = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || s.visibility === "hidden" || s.display === "none") continue;
    let hidden = false, alpha = 1;
    for (let n = el; n; n = n.parentElement) {
      const ns = getComputedStyle(n);
      if (ns.display === "none" || ns.visibility === "hidden") { hidden = true; break; }
      alpha *= Number(ns.opacity);
    }
    if (hidden || el.closest("[aria-hidden=true], .sr-only")) continue;
    const bg = backdrop(el);
    if (!bg) continue;
    let fg = parse(s.color);
    if (!fg) continue;
    fg = blend([fg[0], fg[1], fg[2], fg[3] * alpha], bg);
    const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(s.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700);
    const need = large ? 3 : 4.5;
    checked++;
    if (ratio + 0.005 < need) {
      problems.push({text: (el.value || el.textContent).trim().slice(0, 50),
                     ratio: Math.round(ratio * 100) / 100, need, color: s.color,
                     id: (el.closest("[id]") || {}).id || ""});
    }
  }
  return {checked, problems};
}
"""


def contrast_problems(page: Any, root: str = "body") -> dict[str, Any]:
    """``{"checked": n, "problems": [...]}`` for the visible text under ``root`` (a CSS selector)."""
    return page.evaluate(CONTRAST_JS, root)
