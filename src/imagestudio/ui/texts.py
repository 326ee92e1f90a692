"""Everything the studio's pages say, in English and Russian.

Two kinds of text, two mechanisms:

* static labels, hints and buttons are translation *keys* handed to Gradio (``gr.I18n``); the browser
  translates them from its language, and again when the user switches language;
* text made on the server (progress, results, error messages with values in them) is formatted here in
  the language the browser reports with each event (see ``LANG_JS`` in :mod:`imagestudio.ui.app`).

Both read the same files, ``ui/i18n/en.json`` and ``ui/i18n/ru.json``. The configuration check's English
lines live with the checks (``imagestudio.doctor.MESSAGES``, which the CLI prints) and join the English
table as ``doctor.<code>``; their Russian is in ``ru.json`` like everything else.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr

    from imagestudio.errors import ImageStudioError

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"


def language(value: str | None) -> str:
    """The supported language for a browser language tag (``ru-RU`` → ``ru``); English otherwise."""
    primary = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


#: A decimal number as the pages show one: ``17.3``, ``~17.3``, ``≈0.5``.
DECIMAL = re.compile(r"[~≈]?-?\d+\.\d+")
#: Parameters that look like decimal numbers and are not (``diffusers 0.42``).
NOT_NUMBERS = frozenset({"version"})
#: Languages that write the decimal separator as a comma.
DECIMAL_COMMA = ("ru",)


def decimal(value: Any, lang: str) -> Any:
    """``value`` with a decimal comma where ``lang`` writes one; anything but a decimal number as it is."""
    if lang not in DECIMAL_COMMA or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return str(value).replace(".", ",")
    if isinstance(value, str) and DECIMAL.fullmatch(value):
        return value.replace(".", ",")
    return value


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class Texts:
    """The translation tables; build one with :meth:`load` and pass it around."""

    tables: Mapping[str, Mapping[str, str]]

    @classmethod
    def load(cls) -> Texts:
        from imagestudio.doctor import MESSAGES

        folder = resources.files("imagestudio.ui") / "i18n"
        tables = {
            lang: json.loads((folder / f"{lang}.json").read_text(encoding="utf-8")) for lang in LANGUAGES
        }
        tables[DEFAULT_LANGUAGE].update({f"doctor.{code}": text for code, text in MESSAGES.items()})
        return cls(tables)

    def has(self, key: str) -> bool:
        return key in self.tables[DEFAULT_LANGUAGE]

    def t(self, key: str, lang: str | None = None, /, **params: Any) -> str:
        """``key`` in ``lang`` with ``params`` filled in; a missing key is a bug and raises KeyError.

        Decimal numbers among ``params`` are written the reader's way (``16,1 ГБ`` in Russian)."""
        lang = language(lang)
        table = self.tables[lang]
        template = table[key] if key in table else self.tables[DEFAULT_LANGUAGE][key]
        if not params:
            return template
        return template.format(
            **{name: value if name in NOT_NUMBERS else decimal(value, lang) for name, value in params.items()}
        )

    def gradio_i18n(self) -> gr.I18n:
        import gradio as gr

        return gr.I18n(**{lang: dict(table) for lang, table in self.tables.items()})

    def error(self, exc: ImageStudioError, lang: str | None) -> str:
        """An error in the reader's language, from its ``code`` and ``details`` (see :meth:`coded`)."""
        return self.coded(
            getattr(exc, "code", None), getattr(exc, "details", None), lang, exc.message or str(exc)
        )

    def coded(
        self, code: str | None, details: Mapping[str, Any] | None, lang: str | None, fallback: str
    ) -> str:
        """``err.<code>`` with ``details`` filled in (field names translated too); ``fallback`` when the
        error has no code or its details do not fit the template, which is still better than nothing."""
        if code == "several":
            # One error naming several fields (both sides of a size): each said in turn.
            parts = [
                self.coded(part.get("code"), part.get("details"), lang, "")
                for part in (details or {}).get("errors") or []
                if isinstance(part, Mapping)
            ]
            if not (parts and all(parts)):
                return fallback
            return self.t("err.several", lang, errors=" ".join(parts))
        key = f"err.{code}"
        if not (code and self.has(key)):
            return fallback
        values = dict(details or {})
        for name in ("name", "field"):
            value = values.get(name)
            if isinstance(value, str) and self.has(f"field.{value}"):
                values[name] = self.t(f"field.{value}", lang)
        try:
            return self.t(key, lang, **values)
        except (KeyError, IndexError, ValueError):
            return fallback
