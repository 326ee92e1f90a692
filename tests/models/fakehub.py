"""A local stand-in for the Hugging Face hub: real HTTP on 127.0.0.1, the endpoints huggingface_hub calls.

It serves, for each repository, one commit of files held in memory, answering like the hub does:

* ``GET /api/models/{repo}/revision/{rev}[?blobs=true]`` — the file list (``siblings``) with sizes, git
  blob ids and, for LFS files (``*.safetensors`` here, as on the hub), their sha256 and size;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` — the file, with ``X-Repo-Commit``, ``ETag`` (the blob
  id, or the sha256 for LFS files, also as ``X-Linked-Etag``), ``Content-Length`` and ``Accept-Ranges``;
  a ``Range: bytes=N-`` request gets ``206`` and ``Content-Range``. No Xet headers: transfers are plain HTTP.

Errors carry the hub's ``X-Error-Code`` so huggingface_hub raises its own exception types. Every request
is logged (method, file, range, bytes sent) so tests can check what was — and was not — fetched. Two
faults can be armed per file for its next full GET: ``stall`` (send N bytes, then hold the connection
until released: time to kill a client mid-file) and ``drop`` (send N bytes, then close the connection).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".png", ".onnx", ".gguf")
#: How long :meth:`FakeHub.gets` waits for bodies still being sent (a stalled one is logged before it hangs).
SETTLE_S = 30.0


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass
class FakeRepo:
    repo_id: str
    files: dict[str, bytes]
    sha: str = ""
    #: Bytes served instead of a file's real content (its metadata still describes the real one).
    tampered: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sha:
            digest = hashlib.sha1(usedforsecurity=False)
            for path in sorted(self.files):
                digest.update(path.encode() + self.files[path])
            self.sha = digest.hexdigest()

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(path) else git_blob_id(data)

    def tree_entry(self, path: str) -> dict:
        sibling = self.sibling(path)
        entry = {"type": "file", "path": path, "size": sibling["size"], "oid": sibling["blobId"]}
        if "lfs" in sibling:
            entry["lfs"] = {"oid": sibling["lfs"]["sha256"], "size": sibling["size"], "pointerSize": 134}
        return entry

    def sibling(self, path: str) -> dict:
        data = self.files[path]
        entry = {"rfilename": path, "size": len(data), "blobId": git_blob_id(data)}
        if self.is_lfs(path):
            entry["lfs"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}
        return entry


@dataclass(frozen=True)
class Served:
    method: str
    repo: str
    path: str
    range: str | None
    status: int
    bytes_sent: int


class FakeHub:
    """Start with :meth:`start`, point ``HF_ENDPOINT`` (or ``endpoint=``) at :attr:`url`, :meth:`close`."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.log: list[Served] = []
        self.api_calls: list[str] = []
        self._lock = threading.Lock()
        #: Signalled when a file's body has been sent and logged (see :meth:`gets`).
        self._sent = threading.Condition(self._lock)
        self._sending = 0
        self._faults: dict[tuple[str, str], list[tuple[str, int]]] = {}
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- setup --------------------------------------------------------------------------------------

    def add_repo(
        self, repo_id: str, folder: Path | None = None, files: dict[str, bytes] | None = None
    ) -> FakeRepo:
        content = dict(files or {})
        if folder is not None:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    content.setdefault(path.relative_to(folder).as_posix(), path.read_bytes())
        repo = FakeRepo(repo_id, content)
        self.repos[repo_id] = repo
        return repo

    def stall(self, repo_id: str, path: str, after_bytes: int) -> None:
        """The next full GET of ``path`` sends ``after_bytes`` bytes, then hangs until :attr:`release`."""
        self._faults.setdefault((repo_id, path), []).append(("stall", after_bytes))

    def drop(self, repo_id: str, path: str, after_bytes: int, times: int = 1) -> None:
        """The next ``times`` full GETs of ``path`` send ``after_bytes`` bytes, then close the connection."""
        self._faults.setdefault((repo_id, path), []).extend([("drop", after_bytes)] * times)

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            owner = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what happened ------------------------------------------------------------------------------

    def gets(self, path: str | None = None) -> list[Served]:
        """Content GETs (not HEADs, not API calls), optionally of one file.

        Once no body is being sent: a GET is logged when its handler has written the body, which can be
        just after the client has read the last byte and returned.
        """
        with self._sent:
            self._sent.wait_for(lambda: self._sending == 0, timeout=SETTLE_S)
            return [s for s in self.log if s.method == "GET" and (path is None or s.path == path)]

    def record(self, served: Served) -> None:
        with self._lock:
            self.log.append(served)

    def sending(self) -> None:
        """A body is about to be sent: :meth:`gets` waits for it to be logged."""
        with self._lock:
            self._sending += 1

    def sent(self, served: Served) -> None:
        """That body is sent (or cut short): logged, and whoever waits in :meth:`gets` is told."""
        with self._sent:
            self.log.append(served)
            self._sending -= 1
            self._sent.notify_all()

    def take_fault(self, repo_id: str, path: str) -> tuple[str, int] | None:
        with self._lock:
            pending = self._faults.get((repo_id, path))
            return pending.pop(0) if pending else None


_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(?P<start>\d+)-$")


class _Handler(BaseHTTPRequestHandler):
    owner: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        return

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _error(self, status: int, code: str, commit: str | None = None) -> None:
        body = json.dumps({"error": code}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _repo(self, repo_id: str, rev: str) -> FakeRepo | None:
        repo = self.owner.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound")
            return None
        if rev not in ("main", repo.sha):
            self._error(404, "RevisionNotFound")
            return None
        return repo

    def _json(self, payload: object, send_body: bool) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _dispatch(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if match := _API.match(path):
            self.owner.api_calls.append(path)
            repo = self._repo(match["repo"], match["rev"])
            if repo is not None:
                siblings = [repo.sibling(p) for p in sorted(repo.files)]
                self._json({"id": repo.repo_id, "sha": repo.sha, "siblings": siblings}, send_body)
            return
        if match := _TREE.match(path):  # what huggingface_hub's own snapshot_download lists
            self.owner.api_calls.append(path)
            repo = self._repo(match["repo"], match["rev"])
            if repo is not None:
                self._json([repo.tree_entry(p) for p in sorted(repo.files)], send_body)
            return
        match = _RESOLVE.match(path)
        if not match:
            self._error(404, "NotFound")
            return
        repo = self._repo(match["repo"], match["rev"])
        if repo is None:
            return
        file_path = match["path"]
        if file_path not in repo.files:
            self._error(404, "EntryNotFound", repo.sha)
            return
        self._send_file(repo, file_path, send_body)

    def _send_file(self, repo: FakeRepo, file_path: str, send_body: bool) -> None:
        data = repo.tampered.get(file_path, repo.files[file_path])
        range_header = self.headers.get("Range")
        start = 0
        if range_header and (m := _RANGE.match(range_header)):
            start = int(m["start"])
        status = 206 if start else 200
        self.send_response(status)
        etag = repo.etag(file_path)
        self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("ETag", f'"{etag}"')
        if repo.is_lfs(file_path):
            self.send_header("X-Linked-Etag", f'"{etag}"')
            self.send_header("X-Linked-Size", str(len(repo.files[file_path])))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not send_body:
            self.owner.record(Served("HEAD", repo.repo_id, file_path, range_header, status, 0))
            return
        fault = None if start else self.owner.take_fault(repo.repo_id, file_path)
        body = data[start:]
        if fault is not None:
            body = body[: fault[1]]
        sent = 0
        self.owner.sending()
        try:
            self.wfile.write(body)
            self.wfile.flush()
            sent = len(body)
        finally:
            self.owner.sent(Served("GET", repo.repo_id, file_path, range_header, status, sent))
        if fault is not None:
            if fault[0] == "stall":
                self.owner.release.wait(120)
            self.close_connection = True
