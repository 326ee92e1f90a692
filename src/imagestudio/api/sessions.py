"""Browser sessions for a server with an API key: random ids kept server-side, with expiry and logout.

The cookie holds a random id (256 bits); the server keeps only its SHA-256, so a copy of the database
opens nothing. A session is valid while its row exists, has not expired (``server.session_ttl_hours``)
and was made under the current key: ``/logout`` deletes the row, so a copied cookie stops working
at once, and a new key ends every session made under the old one.

The rows live in a small SQLite file next to the history, so a restart does not log everyone out.
Each call opens its own short connection: no handle to close, safe from any thread. A damaged file
(garbage, truncated, the table missing) is moved aside as ``sessions.sqlite.damaged-<timestamp>`` and a
fresh one started, as the history does: every browser logs in again, and nothing else is lost — a
damaged file must not turn every request with a cookie, the page and the login itself into a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from imagestudio.storage.damaged import is_damage, rename_damaged

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: What the key fingerprint's HMAC signs; the fingerprint ties a session to the key it was made under.
_KEY_LABEL = b"imagestudio session key v2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    key_fingerprint TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
)
"""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Create, check and revoke browser sessions for one API key."""

    def __init__(
        self,
        path: Path,
        api_key: str,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._clock = clock
        self._fingerprint = hmac.new(api_key.encode(), _KEY_LABEL, hashlib.sha256).hexdigest()
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def _prepare(self) -> None:
        """Make the table, or replace a damaged file by a fresh one (once per damage, under the lock)."""
        with self._lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._check()
            except sqlite3.DatabaseError as exc:
                if not is_damage(exc):
                    raise
                target = rename_damaged(self.path)
                log.error(
                    "the sessions file %s is damaged (%s); moved it to %s and started a new one: "
                    "browsers log in again",
                    self.path,
                    exc,
                    target,
                )
                self._check()
            self._ready = True

    def _check(self) -> None:
        conn = self._connect()
        try:
            conn.execute(_SCHEMA)
            # A table of another shape, or a truncated file, only shows when read.
            conn.execute("SELECT id_hash, key_fingerprint, created_at, expires_at FROM sessions LIMIT 1")
            problem = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({problem})")
        finally:
            conn.close()

    def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """``operation`` on a fresh connection; a file damaged meanwhile is replaced and it runs again."""
        try:
            return self._run_once(operation)
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._ready = False  # the next run checks the file and moves it aside
            return self._run_once(operation)

    def _run_once(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        if not self._ready:
            self._prepare()
        conn = self._connect()
        try:
            return operation(conn)
        finally:
            conn.close()

    def create(self) -> str:
        """A new session's cookie value; expired sessions are swept on the way."""
        token = secrets.token_hex(32)
        now = self._clock()

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            conn.execute(
                "INSERT INTO sessions (id_hash, key_fingerprint, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (_digest(token), self._fingerprint, now, now + self.ttl_s),
            )

        self._run(insert)
        return token

    def is_valid(self, token: str | None) -> bool:
        """True for a live session made under this key."""
        # A valid token is 64 hex digits; anything else is not worth a database look-up.
        if not token or len(token) != 64:
            return False
        row = self._run(
            lambda conn: conn.execute(
                "SELECT key_fingerprint, expires_at FROM sessions WHERE id_hash = ?", (_digest(token),)
            ).fetchone()
        )
        if row is None:
            return False
        fingerprint, expires_at = row
        return hmac.compare_digest(fingerprint, self._fingerprint) and expires_at > self._clock()

    def revoke(self, token: str | None) -> None:
        """End the session (logout); unknown tokens are ignored."""
        if not token:
            return
        self._run(lambda conn: conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(token),)))
