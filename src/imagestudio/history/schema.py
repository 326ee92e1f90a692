"""History's SQLite schema: the tables, the migrations that bring older files forward, and opening a file.

The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` brings older files forward. Opening
checks the file is whole (every table readable, SQLite's quick check clean) and raises
:class:`sqlite3.DatabaseError` when it is not, so the store can move a damaged file aside
(:mod:`imagestudio.history.damaged`). A file from a *newer* imagestudio raises :class:`NewerSchema`.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from imagestudio.history.search import TOKENIZER

log = logging.getLogger(__name__)

_SCHEMA_V1 = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    model TEXT,
    prompt TEXT,
    request_json TEXT NOT NULL,
    seed INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error_message TEXT,
    error_type TEXT,
    error_status INTEGER,
    error_param TEXT,
    timings_json TEXT,
    memory_plan_json TEXT,
    peak_memory_bytes INTEGER,
    extra_json TEXT,
    result_json TEXT
);
CREATE INDEX jobs_by_state ON jobs(state);
CREATE INDEX jobs_by_created ON jobs(created_at);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    job_id TEXT REFERENCES jobs(id) ON DELETE SET NULL,
    path TEXT NOT NULL,
    prompt TEXT NOT NULL,
    prompt_folded TEXT NOT NULL,
    negative_prompt TEXT,
    model TEXT,
    seed INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    created_at REAL NOT NULL,
    metadata_json TEXT NOT NULL
);
CREATE INDEX images_by_created ON images(created_at);
CREATE INDEX images_by_job ON images(job_id);
"""

# Word search (see history/search.py): an FTS5 index of each image's casefolded prompt, kept in step
# with the images table by triggers (whoever writes or deletes rows), filled for rows already there.
# Keyed by the image id, not rowid: a VACUUM may renumber the rowids of a table with a TEXT key.
_SCHEMA_V2 = f"""
CREATE VIRTUAL TABLE images_fts USING fts5(image_id UNINDEXED, body, tokenize = '{TOKENIZER}');
CREATE TRIGGER images_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_fts(image_id, body) VALUES (new.id, replace(new.prompt_folded, 'ё', 'е'));
END;
CREATE TRIGGER images_fts_delete AFTER DELETE ON images BEGIN
    DELETE FROM images_fts WHERE image_id = old.id;
END;
CREATE TRIGGER images_fts_update AFTER UPDATE OF prompt_folded ON images BEGIN
    UPDATE images_fts SET body = replace(new.prompt_folded, 'ё', 'е') WHERE image_id = new.id;
END;
INSERT INTO images_fts(image_id, body) SELECT id, replace(prompt_folded, 'ё', 'е') FROM images;
"""

#: ``MIGRATIONS[n]`` takes a file from version n to n + 1.
MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2]
SCHEMA_VERSION = len(MIGRATIONS)


class NewerSchema(sqlite3.DatabaseError):
    """The file is from a newer imagestudio: refused, never moved aside (its history is intact)."""


def open_database(db_path: Path) -> sqlite3.Connection:
    """Connect, migrate and check the schema is whole; raises sqlite3.DatabaseError if it is not."""
    conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, db_path)
        # A file can claim the current version yet lack tables, or be truncated past its header:
        # both only show when read, so read every table and let SQLite check the pages now.
        for table in ("jobs", "images"):
            conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, db_path: Path) -> None:
    """Bring the file to :data:`SCHEMA_VERSION`, each step and its version bump in one transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise NewerSchema(f"it has schema version {version}, newer than this imagestudio's {SCHEMA_VERSION}")
    for target in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        log.info("history database %s migrated to schema %d", db_path, target + 1)


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our transaction first; running statements one by one keeps a
    # migration and its version bump atomic. A trigger's body has semicolons of its own, so pieces are
    # joined until SQLite calls the statement complete.
    statements, pending = [], ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements
