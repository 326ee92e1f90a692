"""The history store: every job and every image it made, in SQLite, surviving restarts and crashes.

* WAL mode: readers (the UI's gallery, ``/api/history``) never wait for the worker's writes, and a
  killed process loses at most the transaction in flight, never the file.
* A job row is written when the job is accepted; a server killed mid-job leaves it ``running`` or
  ``queued``, and the next start marks such rows failed ("server stopped during the job"). The
  images of finished jobs are untouched.
* Image paths are stored relative to the outputs directory and resolved inside it on the way out;
  clients only ever see opaque ids.
* Prompt search is case-insensitive in every script: SQLite's LOWER/LIKE fold ASCII only, so a
  casefolded copy of each prompt is stored and searched with an escaped LIKE pattern.
* The schema and its migrations are :mod:`imagestudio.history.schema`.
* A damaged file (corrupt, truncated, not a database, tables missing) never stops the server: it is
  moved aside and the images are listed again from the metadata every PNG carries
  (:mod:`imagestudio.history.damaged`, :meth:`HistoryStore.rebuild_from_outputs`).

One connection shared behind a lock: SQLite serialises writers anyway, and the calls are short.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagestudio.errors import ConfigError
from imagestudio.history.damaged import move_aside, rows_from_outputs
from imagestudio.history.schema import NewerSchema, open_database
from imagestudio.history.search import fold, match_query
from imagestudio.jobs.events import STOPPED_DURING_JOB
from imagestudio.jobs.model import JobError, JobInfo, JobRequest, JobState
from imagestudio.storage.files import resolve_inside
from imagestudio.storage.saved_image import SavedImage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageRecord:
    id: str
    job_id: str | None
    #: Relative to the outputs directory; server-side only.
    path: str
    prompt: str
    negative_prompt: str | None
    model: str | None
    seed: int
    width: int
    height: int
    created_at: float
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ImagePage:
    items: list[ImageRecord]
    total: int


def like_contains(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with ``%``, ``_`` and the escape taken literally."""
    escaped = fold(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _text(value: Any) -> str | None:
    """A metadata value that should be text, or None when it is missing or not text."""
    return value if isinstance(value, str) else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


class HistoryStore:
    """Jobs and images in one SQLite file; thread-safe; :meth:`close` when done."""

    def __init__(self, db_path: Path, outputs_dir: Path, *, owner: bool = True) -> None:
        self.db_path = db_path
        self.outputs_dir = outputs_dir
        #: The server owns the file: opening it fails the jobs a killed server left unfinished. A second
        #: process writing into the same history (a CLI command while a server runs) is not the owner:
        #: those unfinished jobs may be the running server's.
        self.owner = owner
        self._lock = threading.Lock()
        #: Where a damaged database was moved to at opening, if it was.
        self.damaged_copy: Path | None = None
        #: Images listed again from the PNGs' metadata after a damaged database was replaced.
        self.rebuilt = 0
        db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except NewerSchema as exc:
            raise ConfigError(
                f"the history database {db_path} cannot be used: {exc} (update imagestudio, or set "
                "storage.history_db to another file)",
                param="storage.history_db",
            ) from None
        except sqlite3.DatabaseError as exc:
            self.damaged_copy = move_aside(db_path, exc)
            log.error(
                "the history database %s is damaged (%s); moved it to %s and started a new one, listing "
                "the images in %s again from their own metadata",
                db_path,
                exc,
                self.damaged_copy,
                outputs_dir,
            )
            try:
                self._conn = self._open()
            except sqlite3.DatabaseError as again:
                raise ConfigError(
                    f"the history database {db_path} cannot be used: {again} (set storage.history_db)",
                    param="storage.history_db",
                ) from None
            self.rebuilt = self.rebuild_from_outputs()
        self.recovered = self._recover()

    # ----------------------------------------------------------------- setup

    def _open(self) -> sqlite3.Connection:
        """Open the file (:func:`open_database`) and, as its owner, fail the jobs left unfinished."""
        conn = open_database(self.db_path)
        try:
            if self.owner:
                self._fail_unfinished(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def rebuild_from_outputs(self) -> int:
        """Record every PNG in the outputs folder that carries this app's metadata; returns how many.

        The images come back without their jobs (a job's timings and errors lived only in the lost
        file); each keeps its prompt, seed, size, model and every parameter it was made with.
        """
        root = self.outputs_dir
        if not root.is_dir():
            return 0
        known = {row[0] for row in self._conn.execute("SELECT path FROM images")}
        rows = rows_from_outputs(root, known)
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO images (id, job_id, path, prompt, prompt_folded, negative_prompt, model, seed, "
                "width, height, created_at, metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        log.warning("listed %d image(s) of %s again from their metadata", len(rows), root)
        return len(rows)

    def _fail_unfinished(self, conn: sqlite3.Connection) -> None:
        """Fail the jobs a previous server left unfinished (counted in :attr:`recovered`)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._unfinished = conn.execute(
                "UPDATE jobs SET state = ?, error_message = ?, error_type = 'server_error', "
                "error_status = 500, finished_at = ? WHERE state IN (?, ?)",
                (JobState.FAILED.value, STOPPED_DURING_JOB, time.time(), "queued", "running"),
            ).rowcount
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _recover(self) -> int:
        """How many unfinished jobs opening the file marked failed."""
        count = getattr(self, "_unfinished", 0)
        if count:
            log.warning("%d job(s) were unfinished when the server last stopped; marked failed", count)
        return count

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ----------------------------------------------------------------- jobs

    def record_job(
        self,
        job_id: str,
        *,
        kind: str,
        model: str | None,
        prompt: str | None,
        request: dict[str, Any],
        seed: int | None,
        created_at: float,
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO jobs (id, kind, state, model, prompt, request_json, seed, created_at) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, kind, model, prompt, _json(request), seed, created_at),
            )

    def mark_running(self, job_id: str, started_at: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ?", (started_at, job_id)
            )

    def finish_job(
        self,
        job_id: str,
        state: JobState,
        finished_at: float,
        *,
        error: JobError | None = None,
        timings: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        images: Sequence[SavedImage] = (),
    ) -> None:
        """Record the outcome and the images in one transaction: a job is never done without them.

        Each image's prompt, negative prompt and model are its metadata's, else the job's.
        """
        extra = dict(extra or {})
        memory_plan = extra.pop("memory_plan", None)
        peak = extra.pop("peak_memory_bytes", None)
        with self._transaction() as conn:
            job = conn.execute("SELECT model, prompt FROM jobs WHERE id = ?", (job_id,)).fetchone()
            rows = [self._image_row(job_id, job, image, finished_at) for image in images]
            result = [{"id": row[0], "path": row[2]} for row in rows]
            conn.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, error_message = ?, error_type = ?, "
                "error_status = ?, error_param = ?, timings_json = ?, memory_plan_json = ?, "
                "peak_memory_bytes = ?, extra_json = ?, result_json = ? WHERE id = ?",
                (
                    state.value,
                    finished_at,
                    error.message if error else None,
                    error.type if error else None,
                    error.http_status if error else None,
                    error.param if error else None,
                    _json(timings),
                    _json(memory_plan),
                    peak,
                    _json(extra or None),
                    _json(result),
                    job_id,
                ),
            )
            conn.executemany(
                "INSERT INTO images (id, job_id, path, prompt, prompt_folded, negative_prompt, model, seed, "
                "width, height, created_at, metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def _image_row(
        self, job_id: str, job: sqlite3.Row | None, image: SavedImage, created_at: float
    ) -> tuple[Any, ...]:
        root = self.outputs_dir.resolve()
        relative = image.path.resolve().relative_to(root).as_posix()  # ValueError: outside outputs
        meta = image.metadata
        prompt = _text(meta.get("prompt")) or (job["prompt"] if job is not None else None) or ""
        model = _text(meta.get("model")) or (job["model"] if job is not None else None)
        return (
            image.id,
            job_id,
            relative,
            prompt,
            fold(prompt),
            _text(meta.get("negative_prompt")),
            model,
            image.seed,
            image.width,
            image.height,
            created_at,
            _json(meta) or "{}",
        )

    def get_job(self, job_id: str) -> JobInfo | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            images = self._conn.execute(
                "SELECT id, path, seed, width, height, metadata_json FROM images WHERE job_id = ? "
                "ORDER BY rowid",
                (job_id,),
            ).fetchall()
        error = None
        if row["error_message"] is not None:
            error = JobError(
                row["error_message"],
                row["error_type"] or "server_error",
                row["error_status"] or 500,
                row["error_param"],
            )
        return JobInfo(
            id=row["id"],
            kind=row["kind"],
            state=JobState(row["state"]),
            model=row["model"],
            prompt=row["prompt"],
            request=json.loads(row["request_json"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            error=error,
            images=tuple(saved for saved in map(self._saved_image, images) if saved is not None),
        )

    def _saved_image(self, row: sqlite3.Row) -> SavedImage | None:
        """An image row as the job's result (None for a row that points outside the outputs folder)."""
        path = self._inside_outputs(row["path"])
        if path is None:
            return None
        meta = json.loads(row["metadata_json"])
        return SavedImage(row["id"], path, row["seed"], row["width"], row["height"], meta)

    def job_details(self, job_id: str) -> dict[str, Any] | None:
        """Timings, memory plan, peak memory and other extras recorded for a finished job."""
        with self._lock:
            row = self._conn.execute(
                "SELECT timings_json, memory_plan_json, peak_memory_bytes, extra_json FROM jobs WHERE id = ?",
                (job_id,),
            ).fetchone()
        if row is None:
            return None
        return {
            "timings": json.loads(row["timings_json"]) if row["timings_json"] else None,
            "memory_plan": json.loads(row["memory_plan_json"]) if row["memory_plan_json"] else None,
            "peak_memory_bytes": row["peak_memory_bytes"],
            "extra": json.loads(row["extra_json"]) if row["extra_json"] else None,
        }

    # ----------------------------------------------------------------- images

    def list_images(self, query: str | None = None, *, limit: int = 50, offset: int = 0) -> ImagePage:
        """Images newest first, optionally only those whose prompt has every word of ``query`` in some
        form (FTS5, see history/search.py) or contains ``query`` as typed (any case)."""
        where, params = "", []
        if query and query.strip():
            # instr(), not LIKE: no wildcards to escape, and a NUL in the query is a character like any
            # other (LIKE stops its pattern at a NUL, so "%00" matched every prompt).
            where, params = "WHERE instr(prompt_folded, ?) > 0", [fold(query.strip())]
            words = match_query(query)
            if words is not None:
                where += " OR id IN (SELECT image_id FROM images_fts WHERE images_fts MATCH ?)"
                params.append(words)
        with self._lock:
            total = self._conn.execute(f"SELECT COUNT(*) FROM images {where}", params).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT * FROM images {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
        return ImagePage([_image_record(row) for row in rows], total)

    def get_image(self, image_id: str) -> ImageRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        return None if row is None else _image_record(row)

    def image_file(self, image_id: str) -> Path | None:
        """The image's file, if the id is known and its file is still inside the outputs directory."""
        record = self.get_image(image_id)
        if record is None:
            return None
        path = self._inside_outputs(record.path)
        return path if path is not None and path.is_file() else None

    def delete_image(self, image_id: str) -> bool:
        """Forget the image and delete its file; False if the id is unknown."""
        with self._transaction() as conn:
            row = conn.execute("SELECT path, metadata_json FROM images WHERE id = ?", (image_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
        path = self._inside_outputs(row["path"])
        if path is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("image %s forgotten, but its file could not be deleted: %s", image_id, exc)
        self._forget_kept_inputs(row["metadata_json"])
        return True

    # ----------------------------------------------------------------- kept input pictures

    def keep_inputs(self, request: JobRequest) -> None:
        """Keep a job's input pictures for History (see storage/kept_inputs.py)."""
        from imagestudio.storage.kept_inputs import keep_inputs

        keep_inputs(self.outputs_dir, request)

    def input_file(self, sha256: str) -> Path | None:
        """A kept input picture, by the SHA-256 a result's metadata names it with."""
        from imagestudio.storage.kept_inputs import kept_input_path

        return kept_input_path(self.outputs_dir, sha256)

    def _forget_kept_inputs(self, metadata_json: str) -> None:
        """Delete the deleted row's kept inputs that no remaining row names."""
        from imagestudio.storage.kept_inputs import forget_inputs, input_shas

        try:
            shas = input_shas(json.loads(metadata_json))
        except (TypeError, ValueError):
            return

        def still_used(sha: str) -> bool:
            # A hex digest has no LIKE wildcards; metadata names inputs by this exact string.
            with self._lock:
                found = self._conn.execute(
                    "SELECT 1 FROM images WHERE metadata_json LIKE ? LIMIT 1", (f"%{sha}%",)
                ).fetchone()
            return found is not None

        forget_inputs(self.outputs_dir, shas, still_used)

    def _inside_outputs(self, relative: str) -> Path | None:
        try:
            return resolve_inside(self.outputs_dir, relative)
        except ValueError:
            log.warning("history row points outside the outputs directory: %r", relative)
            return None


def _image_record(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(
        id=row["id"],
        job_id=row["job_id"],
        path=row["path"],
        prompt=row["prompt"],
        negative_prompt=row["negative_prompt"],
        model=row["model"],
        seed=row["seed"],
        width=row["width"],
        height=row["height"],
        created_at=row["created_at"],
        metadata=json.loads(row["metadata_json"]),
    )
