"""Word search in History: FTS5 with rough stems, so a word finds its other forms; old files migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from imagestudio.history.schema import _SCHEMA_V1, SCHEMA_VERSION, _statements
from imagestudio.history.search import match_query, stem
from imagestudio.history.store import HistoryStore
from tests.history.test_history import add_done_job


def prompts(store: HistoryStore, query: str) -> list[str]:
    return sorted(record.prompt for record in store.list_images(query).items)


def test_a_word_finds_its_other_forms_in_russian_and_english(store: HistoryStore, outputs: Path) -> None:
    add_done_job(store, outputs, "a", ["рыжий кот в шляпе", "Шляпа на столе", "собаки бегут"], at=10.0)
    add_done_job(store, outputs, "b", ["Red hats on a shelf", "a running fox", "ёлка в снегу"], at=20.0)

    assert prompts(store, "шляпа") == ["Шляпа на столе", "рыжий кот в шляпе"]
    assert prompts(store, "шляпой") == ["Шляпа на столе", "рыжий кот в шляпе"]
    assert prompts(store, "собака") == ["собаки бегут"]
    assert prompts(store, "кот шляпа") == ["рыжий кот в шляпе"]  # every word, in any order
    assert prompts(store, "hat") == ["Red hats on a shelf"]
    assert prompts(store, "елка") == ["ёлка в снегу"]  # ё and е are one letter to a searcher
    assert prompts(store, "ЁЛКИ") == ["ёлка в снегу"]
    assert prompts(store, "жираф") == []


def test_fts_syntax_in_a_query_is_taken_literally(store: HistoryStore, outputs: Path) -> None:
    add_done_job(store, outputs, "a", ['a "quoted" cat', "NEAR the sea OR not"], at=10.0)
    assert prompts(store, '"quoted') == ['a "quoted" cat']
    assert prompts(store, "OR") == ["NEAR the sea OR not"]
    assert prompts(store, "near(") == ["NEAR the sea OR not"]
    assert prompts(store, "*") == []
    assert match_query("  ,.;  ") is None


def test_deleted_images_leave_the_index(store: HistoryStore, outputs: Path) -> None:
    ids = add_done_job(store, outputs, "a", ["кот в шляпе", "шляпа"], at=10.0)
    assert store.delete_image(ids[0])
    assert prompts(store, "шляпа") == ["шляпа"]
    assert store.list_images("шляпа").total == 1


def test_stems_keep_short_words_whole() -> None:
    assert stem("шляпа") == "шляп"
    assert stem("шляпами") == "шляп"
    assert stem("кот") == "кот"
    assert stem("hats") == "hat"
    assert stem("red") == "red"


def test_an_existing_version_1_file_is_migrated_and_its_rows_indexed(tmp_path: Path, outputs: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:
        for statement in _statements(_SCHEMA_V1):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO images (id, path, prompt, prompt_folded, seed, width, height, created_at, "
            "metadata_json) VALUES ('old', 'old.png', 'Кот в шляпе', 'кот в шляпе', 1, 64, 64, 1.0, '{}')"
        )
        conn.execute("PRAGMA user_version = 1")
    (outputs / "old.png").write_bytes(b"png")
    store = HistoryStore(db, outputs)
    try:
        assert [r.id for r in store.list_images("шляпа").items] == ["old"]
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    finally:
        store.close()
