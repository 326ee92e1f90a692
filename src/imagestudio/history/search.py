"""Word search over prompts with SQLite FTS5: what is indexed, and how a query becomes an FTS5 match.

Users search for a word in any of its forms ("шляпа" must find "кот в шляпе"), so each query word is
cut down to its stem by the Snowball stemmer of its language (Russian for Cyrillic words, else English)
and matched as a prefix: a prefix match that finds a little too much is better than a search that finds
nothing. The index keeps the words as written, so the stem is cut back to what it shares with the word
(English Snowball spells "happy" as "happi"; "happ" still finds "happy" and "happiness").

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


def fold(text: str) -> str:
    """The form prompts are searched in: casefolded (Кот, КОТ and кот are one word)."""
    return text.casefold()


def index_text(folded_prompt: str) -> str:
    """What the FTS table stores for a prompt (already casefolded by the history store)."""
    return folded_prompt.replace("ё", "е")


def stem(word: str) -> str:
    """``word`` (casefolded) cut to the part its Snowball stem shares with it, keeping at least MIN_STEM
    letters (shorter stems find too much)."""
    import snowballstemmer

    # A stemmer object keeps state while it works: one per call, never shared between threads.
    language = "russian" if _CYRILLIC.search(word) else "english"
    stemmed = snowballstemmer.stemmer(language).stemWord(word)
    # The letters the stem and the word share (os.path.commonprefix would say the same, but it is for paths).
    shared = 0
    while shared < min(len(word), len(stemmed)) and word[shared] == stemmed[shared]:
        shared += 1
    return word[:shared] if shared >= MIN_STEM else word


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
