"""The translation tables: complete, consistent, and used the way the pages use them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagestudio.errors import InvalidRequest, UserError
from imagestudio.ui.texts import LANGUAGES, Texts, language, placeholders

UI_SRC = Path(__file__).resolve().parents[2] / "src" / "imagestudio" / "ui"


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts.load()


def test_every_language_has_the_same_keys_and_no_empty_values(texts: Texts) -> None:
    english = set(texts.tables["en"])
    for lang in LANGUAGES:
        table = texts.tables[lang]
        assert set(table) == english, f"{lang}: missing {english - set(table)}, extra {set(table) - english}"
        empty = [key for key, value in table.items() if not value.strip()]
        assert not empty, f"{lang}: empty values for {empty}"


def test_translations_take_the_same_placeholders(texts: Texts) -> None:
    for key, template in texts.tables["en"].items():
        assert placeholders(texts.tables["ru"][key]) == placeholders(template), key


def test_russian_is_really_russian(texts: Texts) -> None:
    # Guards against a copy of the English file: every sentence-like Russian value has Cyrillic in it.
    cyrillic = re.compile("[а-яё]", re.IGNORECASE)
    untranslated = [
        key
        for key, value in texts.tables["ru"].items()
        if len(re.sub(r"\{[^}]*\}", "", value)) > 12 and not cyrillic.search(value)
    ]
    assert not untranslated


def test_every_key_the_code_uses_exists(texts: Texts) -> None:
    # Keys appear in the UI code as string literals like "gen.prompt"; each must be in the tables.
    used: set[str] = set()
    prefixes = {key.split(".")[0] for key in texts.tables["en"]}
    alternatives = "|".join(sorted(prefixes))
    pattern = re.compile(rf"""["']((?:{alternatives})\.[a-z0-9_.]+)["']""")
    for path in UI_SRC.rglob("*.py"):
        used |= set(pattern.findall(path.read_text(encoding="utf-8")))
    assert used, "the pattern found no keys at all"
    missing = sorted(key for key in used if not texts.has(key) and not key.endswith("."))
    assert not missing


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("ru-RU", "ru"),
        ("ru", "ru"),
        ("RU_ru", "ru"),
        ("en-US", "en"),
        ("de-DE", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_from_browser_tags(tag, expected) -> None:
    assert language(tag) == expected


def test_format_with_values(texts: Texts) -> None:
    assert texts.t("status.running", "ru-RU", step=3, steps=8) == "Шаг 3 из 8"
    assert texts.t("status.running", "en", step=3, steps=8) == "Step 3 of 8"


def test_coded_errors_are_translated_with_field_names(texts: Texts) -> None:
    exc = InvalidRequest(
        "width 40 is not a multiple of 16 (try 32 or 48)",
        param="width",
        code="size_multiple",
        details={"name": "width", "value": 40, "multiple": 16, "lower": 32, "upper": 48},
    )
    assert texts.error(exc, "ru") == "Ширина 40 не кратна 16 (подойдёт 32 или 48)."
    assert texts.error(exc, "en") == "Width 40 is not a multiple of 16 (try 32 or 48)."


def test_errors_without_a_code_keep_their_english_line(texts: Texts) -> None:
    assert texts.error(UserError("something specific", param="x"), "ru") == "something specific"
    # A code whose details do not fit its template must not raise: the English line is shown.
    broken = UserError("the english line", code="size_multiple", details={"name": "width"})
    assert texts.error(broken, "ru") == "the english line"


def _coded_errors() -> list[tuple[str, str, set[str] | None]]:
    """(file, code, detail names) of every ``code="…"`` given to an error outside the HTTP API (None:
    details not a literal dict)."""
    import ast

    found = []
    for path in (UI_SRC.parent).rglob("*.py"):
        if "api" in path.relative_to(UI_SRC.parent).parts:
            continue  # the HTTP API's own OpenAI-style error codes, not UserError codes
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            code = keywords.get("code")
            # A literal, or a choice between literals (``"a_fp16" if fp16 else "a"``).
            choices = [code.body, code.orelse] if isinstance(code, ast.IfExp) else [code]
            codes = [c.value for c in choices if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            if not codes:
                continue
            details = keywords.get("details")
            names: set[str] | None = set()
            if isinstance(details, ast.Dict):
                names = {k.value for k in details.keys if isinstance(k, ast.Constant)}
            elif details is not None:
                names = None
            found += [(path.name, value, names) for value in codes]
    return found


def test_every_error_code_has_a_translation_its_details_can_fill(texts: Texts) -> None:
    coded = _coded_errors()
    assert len(coded) >= 15, "error codes were expected in requests, registry, loader and inputs"
    for file, code, names in coded:
        key = f"err.{code}"
        assert texts.has(key), f"{file}: no translation for error code {code!r}"
        if names is not None:
            for lang in LANGUAGES:
                missing = placeholders(texts.tables[lang][key]) - names
                assert not missing, f"{file}: err.{code} ({lang}) needs {missing} in details"


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        ({"model": "tiny-z-image", "prompt": "кот", "width": 40, "height": 64}, "Ширина 40 не кратна 16"),
        # Both sides wrong: one error names both.
        (
            {"model": "tiny-z-image", "prompt": "кот", "width": 40, "height": 30},
            "Ширина 40 не кратна 16 (подойдёт 32 или 48). Высота 30 не кратна 16",
        ),
        ({"model": "tiny-z-image", "prompt": "   "}, "Сначала напишите запрос"),
        ({"model": "tiny-z-image", "prompt": "кот", "steps": 0}, "Шаги: не меньше 1 (сейчас 0)"),
        ({"model": "no-such-model", "prompt": "кот"}, "Неизвестная модель «no-such-model»"),
        ({"model": "tiny-qwen-image-edit", "prompt": "кот"}, "не умеет"),
    ],
)
def test_real_request_errors_read_in_russian(texts: Texts, settings, build, expected) -> None:
    from imagestudio.job_requests import GenerateRequest

    with pytest.raises(UserError) as caught:
        GenerateRequest.build(**build).resolved(settings)
    assert expected in texts.error(caught.value, "ru")
