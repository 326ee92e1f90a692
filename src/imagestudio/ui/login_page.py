"""The login page a browser sees when the server has an API key: one plain HTML form, no Gradio.

It is served by the HTTP app (:mod:`imagestudio.server.login`) before the studio's pages can load, so it
brings everything it needs inline and speaks the language the browser asks for.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from imagestudio.ui.texts import DEFAULT_LANGUAGE, LANGUAGES, Texts

#: Language names as each language writes itself, for the switch links.
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}

STYLE = """
:root { color-scheme: light dark; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  background: #f4f4f5; color: #18181b; }
main { width: min(26rem, calc(100vw - 2rem)); background: #fff; border: 1px solid #e4e4e7;
  border-radius: 0.75rem; padding: 1.75rem 1.75rem 1.5rem; box-shadow: 0 1px 3px rgb(0 0 0 / 8%); }
.top { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; }
h1 { margin: 0; font-size: 1.5rem; }
.lang a { margin-left: 0.6rem; color: inherit; text-decoration: none; opacity: 0.8; }
.lang a[aria-current] { font-weight: 700; text-decoration: underline; opacity: 1; }
p { line-height: 1.45; }
label { display: block; font-weight: 600; margin: 1.2rem 0 0.4rem; }
input[type=password] { box-sizing: border-box; width: 100%; font: inherit; padding: 0.55rem 0.7rem;
  border: 1px solid #a1a1aa; border-radius: 0.45rem; background: inherit; color: inherit; }
input[aria-invalid=true] { border-color: #dc2626; }
.error { color: #b91c1c; background: #fef2f2; border: 1px solid #fecaca; border-radius: 0.4rem;
  padding: 0.35rem 0.6rem; margin: 0.5rem 0 0; }
.hint { font-size: 0.85rem; opacity: 0.75; margin: 0.5rem 0 0; }
button { margin-top: 1.2rem; width: 100%; font: inherit; font-weight: 600; padding: 0.6rem;
  border: 0; border-radius: 0.45rem; background: #ea580c; color: #fff; cursor: pointer; }
button:hover { background: #c2410c; }
@media (prefers-color-scheme: dark) {
  body { background: #09090b; color: #f4f4f5; }
  main { background: #18181b; border-color: #3f3f46; }
  .error { color: #fecaca; background: #450a0a; border-color: #7f1d1d; }
}
"""


def browser_language(accept_language: str | None) -> str:
    """The supported language the ``Accept-Language`` header prefers most (``ru-RU,ru;q=0.9`` → ru)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().replace("_", "-").split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, index, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def chosen_language(value: str | None) -> str | None:
    """A language the user picked explicitly (``?lang=ru``), or None when there is none (or no such)."""
    value = (value or "").strip().lower()
    return value if value in LANGUAGES else None


@dataclass(frozen=True)
class LoginPage:
    """One rendering of the page: its HTML and the Content-Security-Policy that allows exactly it."""

    html: str
    content_security_policy: str


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _language_script(lang: str, *, remember: bool, follow_saved: bool) -> str:
    """Keep the login page and the studio on one language: a language picked here is remembered
    where the studio's own language links keep it, and a language picked there is used here."""
    if remember:
        action = f'localStorage.setItem(k, "{lang}");'
    elif follow_saved:
        action = (
            "const s = localStorage.getItem(k);"
            f' if ({list(LANGUAGES)!r}.includes(s) && s !== "{lang}") {{'
            ' const u = new URL(location.href); u.searchParams.set("lang", s); location.replace(u); }'
        )
    else:
        return ""
    return f'(() => {{ try {{ const k = "imagestudio.lang"; {action} }} catch (e) {{}} }})();'


def render_login_page(
    texts: Texts,
    lang: str,
    next_path: str,
    *,
    error_key: str | None = None,
    remember_language: bool = False,
    follow_saved_language: bool = False,
) -> LoginPage:
    """The page in ``lang``; ``error_key`` (a ``login.*`` key) is shown under the key field."""

    def t(key: str) -> str:
        return escape(texts.t(key, lang))

    links = "".join(
        f'<a href="/login?{escape(urlencode({"lang": code, "next": next_path}))}" hreflang="{code}"'
        f' data-lang="{code}"{" aria-current=true" if code == lang else ""}>{LANGUAGE_NAMES[code]}</a>'
        for code in LANGUAGES
    )
    error = (
        f'<p class="error" id="login-error" role="alert">{t(error_key)}</p>' if error_key is not None else ""
    )
    described = "login-error login-hint" if error_key is not None else "login-hint"
    invalid = ' aria-invalid="true"' if error_key is not None else ""
    script = _language_script(lang, remember=remember_language, follow_saved=follow_saved_language)
    head_script = f"<script>{script}</script>" if script else ""
    # A language picked on this page stays picked after a wrong key; the browser's own is asked again.
    chosen_field = f'<input type="hidden" name="lang" value="{lang}">' if remember_language else ""
    html = (
        "<!doctype html>\n"
        f'<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # same-origin, not no-referrer: with no-referrer the form's POST carries "Origin: null",
        # which the Origin check must refuse; other sites still never see this page's address.
        '<meta name="referrer" content="same-origin">'
        f"<title>{t('login.title')} · imagestudio</title>"
        f"<style>{STYLE}</style>{head_script}</head><body><main>"
        f'<div class="top"><h1>imagestudio</h1><nav class="lang" id="login-lang">{links}</nav></div>'
        f'<p id="login-intro">{t("login.intro")}</p>'
        '<form method="post" action="/login" id="login-form">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        f"{chosen_field}"
        f'<label for="login-key">{t("login.key")}</label>'
        f'<input id="login-key" name="key" type="password" autocomplete="current-password" required'
        f' autofocus aria-describedby="{described}"{invalid}>'
        f"{error}"
        f'<p class="hint" id="login-hint">{t("login.hint")}</p>'
        f'<button type="submit" id="login-submit">{t("login.submit")}</button>'
        "</form></main></body></html>"
    )
    # Nothing but this page's own style and script may run; no other site may frame it (clickjacking).
    policy = (
        f"default-src 'none'; style-src {_sha256_source(STYLE)};"
        + (f" script-src {_sha256_source(script)};" if script else "")
        + " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return LoginPage(html, policy)
