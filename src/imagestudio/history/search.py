"""Word search over prompts with SQLite FTS5: what is indexed, and how a query becomes an FTS5 match.

Users search for a word in any of its forms ("шляпа" must find "кот в шляпе"), so each query word is
cut down to a rough stem (a common inflectional ending dropped) and matched as a prefix. This is a
deliberately small, dependency-free stemmer: Russian and English endings cover what people type, and
a prefix match that finds a little too much is better than a search that finds nothing.

FTS5's ``unicode61`` tokenizer folds case in every script and, with ``remove_diacritics 2``, accents;
it keeps ``ё`` distinct from ``е`` though, and Russian writers use them interchangeably, so both the
indexed text and the query spell ``ё`` as ``е``.
"""

from __future__ import annotations

import re

TOKENIZER = "unicode61 remove_diacritics 2"
#: Below this many letters a word is matched as typed (plus a prefix), never shortened further.
MIN_STEM = 3
_WORD = re.compile(r"\w+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-я]")
# Longest first, so "ами" is dropped before "и".
_RUSSIAN_ENDINGS = sorted(
    (
        "иями",
        "ями",
        "ами",
        "ого",
        "его",
        "ому",
        "ему",
        "ыми",
        "ими",
        "ией",
        "иям",
        "иях",
        "ах",
        "ях",
        "ам",
        "ям",
        "ом",
        "ем",
        "ой",
        "ей",
        "ий",
        "ый",
        "ая",
        "яя",
        "ое",
        "ее",
        "ую",
        "юю",
        "ые",
        "ие",
        "ов",
        "ев",
        "ью",
        "а",
        "я",
        "о",
        "е",
        "ы",
        "и",
        "у",
        "ю",
        "ь",
        "й",
    ),
    key=len,
    reverse=True,
)
_ENGLISH_ENDINGS = ("ing", "es", "ed", "s")


def fold(text: str) -> str:
    """The form prompts are searched in: casefolded (Кот, КОТ and кот are one word)."""
    return text.casefold()


def index_text(folded_prompt: str) -> str:
    """What the FTS table stores for a prompt (already casefolded by the history store)."""
    return folded_prompt.replace("ё", "е")


def stem(word: str) -> str:
    """``word`` (casefolded) without one common inflectional ending, keeping at least MIN_STEM letters."""
    endings = _RUSSIAN_ENDINGS if _CYRILLIC.search(word) else _ENGLISH_ENDINGS
    for ending in endings:
        if word.endswith(ending) and len(word) - len(ending) >= MIN_STEM:
            return word[: -len(ending)]
    return word


def match_query(text: str) -> str | None:
    """An FTS5 MATCH expression finding prompts that contain every word of ``text`` in some form.

    Each word becomes a quoted prefix term (``"шляп"*``), so nothing the user types is read as FTS5
    syntax. None when ``text`` has no words (punctuation only): the caller then searches by substring.
    """
    words = _WORD.findall(index_text(text.casefold()))
    if not words:
        return None
    terms = []
    for word in words:
        stemmed = stem(word).replace('"', '""')
        terms.append(f'"{stemmed}"*')
    return " AND ".join(terms)
