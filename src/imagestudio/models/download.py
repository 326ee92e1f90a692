"""Fetch a model from the hub: plan, check the disk, transfer resumably, verify, report progress.

The steps, and why each is done this way:

1. **Plan** (two small requests): the repository's file list with sizes and checksums for one commit
   (``model_info(..., files_metadata=True)``), and its ``model_index.json``; from these,
   :func:`~imagestudio.models.files.select_pipeline_files` picks what the pipeline loads. The revision
   is pinned to that commit so a repository updated mid-download cannot mix two versions.
2. **Disk check** before any byte moves: what is still to fetch (files already in the cache and bytes
   of interrupted transfers do not count) against the free space where it goes, keeping
   ``downloads.min_free_gb`` free.
3. **Transfer** each file into ``<etag>.incomplete`` with an HTTP range request from wherever the last
   attempt stopped: huggingface_hub 1.x+ writes to a fresh temporary name per process and deletes it on
   failure, so a killed download would start over; a 25 GB file must not. Connection drops are retried
   from the current byte. Every byte is hashed as it is written and the file is moved into place only
   when its sha256 (LFS files) or git blob id (small files) matches what the hub published, so a
   complete-looking file is a correct file. ``model_index.json`` is placed last.
4. **Verify** the finished folder (:mod:`~imagestudio.models.verify`).

The result lives in huggingface_hub's cache layout (:mod:`~imagestudio.models.cache`) or, with
``to=DIR``, in a plain folder. No hub call here retries on its own: offline mode and unreachable hosts
become one :class:`~imagestudio.errors.ModelNotAvailable` line naming the size and the command.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from imagestudio.errors import (
    DownloadCancelled,
    DownloadFailed,
    ModelNotAvailable,
    NotEnoughDiskSpace,
    UserError,
)
from imagestudio.models import cache
from imagestudio.models.files import MODEL_INDEX, component_folders, select_pipeline_files
from imagestudio.models.state import FOLDER_PARTIAL_DIR, effective_repo
from imagestudio.models.units import human_bytes, human_duration
from imagestudio.models.verify import VerifyReport, verify_model_dir
from imagestudio.registry import ModelSpec, get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings

#: Seconds to wait for the hub to connect or to send the next bytes before calling it unreachable.
HUB_TIMEOUT_S = 15.0
#: Consecutive failed attempts (without a byte of progress) before a transfer gives up.
MAX_ATTEMPTS = 5
#: The longest wait between two such attempts (they back off 2 s, 4 s, 8 s, … up to this).
MAX_RETRY_DELAY_S = 10.0
#: Progress callbacks are rate-limited to this interval (plus one at every file boundary).
PROGRESS_INTERVAL_S = 0.1
#: The window the transfer rate is averaged over.
RATE_WINDOW_S = 5.0
_READ_BLOCK = 8 * 1024 * 1024


DiskUsageFn = Callable[[str], Any]


@dataclass(frozen=True)
class RemoteFile:
    """One file of the pinned commit, with what is needed to fetch and check it."""

    path: str
    size: int
    #: The blob name in the cache: sha256 for LFS files, the git blob id for the others.
    etag: str
    lfs: bool

    def new_hash(self) -> Any:
        """A hash object that, fed the file's bytes, must end at ``etag``."""
        if self.lfs:
            return hashlib.sha256()
        # A git blob id is sha1 over "blob <size>\\0" followed by the content.
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(f"blob {self.size}\0".encode())
        return digest


@dataclass(frozen=True)
class DownloadProgress:
    """A progress event: what the terminal bar, the job events and the UI's bar show."""

    model_id: str
    done_bytes: int
    total_bytes: int
    #: Bytes per second over the last few seconds of transfer (0 before any).
    rate: float
    #: Seconds left at ``rate``; None while unknown.
    eta: float | None
    current_file: str | None
    files_done: int
    files_total: int

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "current_file": self.current_file,
            "files_done": self.files_done,
            "files_total": self.files_total,
        }

    def line(self) -> str:
        """One plain-text line for logs and terminals without a progress bar."""
        return (
            f"{self.fraction:4.0%}  {human_bytes(self.done_bytes)} / {human_bytes(self.total_bytes)}  "
            f"{human_bytes(self.rate)}/s  ETA {human_duration(self.eta)}  {self.current_file or ''}".rstrip()
        )


ProgressCallback = Callable[[DownloadProgress], None]


class Destination(Protocol):
    """Where fetched files end up: the hub cache or a plain folder."""

    def folder(self, commit: str) -> Path: ...
    def disk_target(self) -> Path: ...
    def is_present(self, commit: str, file: RemoteFile) -> bool: ...
    def reuse(self, commit: str, file: RemoteFile) -> bool: ...
    def partial_path(self, file: RemoteFile) -> Path: ...
    def lock_path(self, file: RemoteFile) -> Path: ...
    def begin(self, revision: str, commit: str) -> None: ...
    def place(self, commit: str, file: RemoteFile, completed: Path) -> None: ...
    def finish(self) -> None: ...


@dataclass(frozen=True)
class CacheDestination:
    """huggingface_hub's cache: blobs named by checksum, snapshot links per commit."""

    root: Path
    repo_id: str

    @property
    def storage(self) -> Path:
        return cache.repo_storage(self.repo_id, self.root)

    def folder(self, commit: str) -> Path:
        return self.storage / "snapshots" / commit

    def disk_target(self) -> Path:
        return self.root

    def is_present(self, commit: str, file: RemoteFile) -> bool:
        return (self.folder(commit) / file.path).is_file()

    def _blob(self, file: RemoteFile) -> Path:
        return self.storage / "blobs" / file.etag

    def reuse(self, commit: str, file: RemoteFile) -> bool:
        # The same content under another revision (or fetched by other tools): link it, fetch nothing.
        blob = self._blob(file)
        if not blob.is_file() or blob.stat().st_size != file.size:
            return False
        cache.link_into_snapshot(blob, self.folder(commit) / file.path)
        return True

    def partial_path(self, file: RemoteFile) -> Path:
        return self.storage / "blobs" / f"{file.etag}{cache.PARTIAL_SUFFIX}"

    def lock_path(self, file: RemoteFile) -> Path:
        # The lock file huggingface_hub takes for the same blob, so the two never fetch it at once.
        return self.root / ".locks" / self.storage.name / f"{file.etag}.lock"

    def begin(self, revision: str, commit: str) -> None:
        (self.storage / "blobs").mkdir(parents=True, exist_ok=True)
        self.folder(commit).mkdir(parents=True, exist_ok=True)
        cache.write_ref(self.storage, revision, commit)

    def place(self, commit: str, file: RemoteFile, completed: Path) -> None:
        blob = self._blob(file)
        completed.replace(blob)
        cache.link_into_snapshot(blob, self.folder(commit) / file.path)

    def finish(self) -> None:
        return None


@dataclass(frozen=True)
class FolderDestination:
    """A plain diffusers folder (``models download ID --to DIR``), for ``models.<id>.path`` or copying."""

    root: Path

    @property
    def _partials(self) -> Path:
        return self.root / FOLDER_PARTIAL_DIR

    def folder(self, commit: str) -> Path:
        return self.root

    def disk_target(self) -> Path:
        return self.root

    def is_present(self, commit: str, file: RemoteFile) -> bool:
        # Files are only ever moved here complete and checked, so the right size means this file.
        target = self.root / file.path
        return target.is_file() and target.stat().st_size == file.size

    def reuse(self, commit: str, file: RemoteFile) -> bool:
        return False

    def partial_path(self, file: RemoteFile) -> Path:
        return self._partials / f"{file.etag}{cache.PARTIAL_SUFFIX}"

    def lock_path(self, file: RemoteFile) -> Path:
        return self._partials / f"{file.etag}.lock"

    def begin(self, revision: str, commit: str) -> None:
        self._partials.mkdir(parents=True, exist_ok=True)

    def place(self, commit: str, file: RemoteFile, completed: Path) -> None:
        target = self.root / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        completed.replace(target)

    def finish(self) -> None:
        if self._partials.is_dir():
            for lock in self._partials.glob("*.lock"):
                with contextlib.suppress(OSError):
                    lock.unlink()
            with contextlib.suppress(OSError):
                self._partials.rmdir()


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of one model at one commit will fetch, known before it starts."""

    model_id: str
    repo_id: str
    revision: str
    commit: str
    endpoint: str
    #: The files the pipeline needs, in fetch order (``model_index.json`` last).
    files: tuple[RemoteFile, ...]
    destination: Destination
    #: Paths already in place (skipped), and bytes of interrupted transfers (resumed).
    present: frozenset[str] = frozenset()
    partial_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def have_bytes(self) -> int:
        """Bytes already here: whole files in place plus the parts of interrupted ones."""
        return sum(
            f.size if f.path in self.present else self.partial_bytes.get(f.path, 0) for f in self.files
        )

    @property
    def fetch_bytes(self) -> int:
        """Bytes still to come over the network."""
        return self.total_bytes - self.have_bytes

    @property
    def folder(self) -> Path:
        return self.destination.folder(self.commit)


@dataclass(frozen=True)
class DownloadResult:
    model_id: str
    folder: Path
    repo_id: str | None
    commit: str | None
    fetched_bytes: int
    total_bytes: int
    files: int
    elapsed_s: float
    report: VerifyReport
    #: Set when nothing had to be fetched; says why (e.g. the hub could not be asked).
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "path": str(self.folder),
            "repo": self.repo_id,
            "commit": self.commit,
            "fetched_bytes": self.fetched_bytes,
            "total_bytes": self.total_bytes,
            "files": self.files,
            "elapsed_s": round(self.elapsed_s, 3),
            "verified": self.report.ok,
            "note": self.note,
        }


# --- hub access --------------------------------------------------------------------------------


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint`` or huggingface_hub's (``HF_ENDPOINT``), read when called."""
    if endpoint:
        return endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def _http() -> Any:
    """The HTTP client package huggingface_hub is built on (httpx2 from 2.x, httpx in 1.x)."""
    try:
        import httpx2
    except ImportError:  # huggingface_hub 1.x
        import httpx

        return httpx
    return httpx2


@contextlib.contextmanager
def hub_errors(spec: ModelSpec, repo: str, revision: str, endpoint: str) -> Iterator[None]:
    """Turn huggingface_hub/httpx failures into one line the user can act on."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    http = _http()
    size = f"{repo}, about {human_bytes(spec.download_bytes)}"
    fallback = f"or point models.{spec.id}.path in config.yaml at a downloaded folder"
    try:
        yield
    except OfflineModeIsEnabled:
        raise ModelNotAvailable(
            f"{spec.id} is not downloaded ({size}) and HF_HUB_OFFLINE=1 forbids reaching the hub: unset it "
            f"and run: imagestudio models download {spec.id} — {fallback}",
            param="model",
        ) from None
    except (http.TimeoutException, http.NetworkError, http.ProxyError) as exc:
        raise ModelNotAvailable(
            f"{spec.id} is not downloaded ({size}) and {endpoint} cannot be reached "
            f"({type(exc).__name__}: {exc or 'no answer'}); check the network, then run: imagestudio models "
            f"download {spec.id} — {fallback}",
            param="model",
        ) from None
    except GatedRepoError:
        raise UserError(
            f"{repo} needs access: accept its terms on the hub's page and log in with `hf auth login`",
            param="model",
        ) from None
    except RevisionNotFoundError:
        raise UserError(f"revision {revision!r} does not exist in {repo}", param="revision") from None
    except RepositoryNotFoundError:
        raise UserError(
            f"repository {repo} was not found on {endpoint} (check models.{spec.id}.repo)", param="model"
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DownloadFailed(f"the hub answered HTTP {status} for {repo}; try again later") from None


def _remote_files(info: Any) -> dict[str, RemoteFile]:
    files = {}
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        if lfs is not None:
            files[sibling.rfilename] = RemoteFile(sibling.rfilename, int(lfs.size), str(lfs.sha256), True)
        elif sibling.blob_id is not None and sibling.size is not None:
            files[sibling.rfilename] = RemoteFile(
                sibling.rfilename, int(sibling.size), str(sibling.blob_id), False
            )
    return files


def _resolve_url(repo: str, path: str, commit: str, endpoint: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, path, revision=commit, endpoint=endpoint)


def _request_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers()
    # Byte ranges and checksums are over the stored bytes: the hub gzips text files unless told not to.
    headers["Accept-Encoding"] = "identity"
    return headers


def _read_model_index(remote: dict[str, RemoteFile], repo: str, commit: str, endpoint: str) -> dict[str, Any]:
    # Read into memory, not into the destination: a download refused for lack of space leaves nothing.
    if MODEL_INDEX not in remote:
        raise UserError(f"{repo} has no {MODEL_INDEX}: it is not a diffusers pipeline", param="model")
    from huggingface_hub.utils import get_session, hf_raise_for_status

    url = _resolve_url(repo, MODEL_INDEX, commit, endpoint)
    response = get_session().get(url, headers=_request_headers(), timeout=HUB_TIMEOUT_S)
    hf_raise_for_status(response)
    try:
        index = json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DownloadFailed(f"{repo}: {MODEL_INDEX} is not valid JSON") from None
    if not isinstance(index, dict):
        raise DownloadFailed(f"{repo}: {MODEL_INDEX} is not a JSON object")
    return index


def plan_download(
    settings: Settings,
    model_id: str,
    *,
    revision: str | None = None,
    to: Path | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
) -> DownloadPlan:
    """Ask the hub what a download of ``model_id`` means: files, sizes, what is already here."""
    spec = get_model(model_id)
    repo = effective_repo(spec, settings)
    if repo is None:
        raise UserError(
            f"{spec.id} is built on this machine on first use; there is nothing to download", param="model"
        )
    configured = settings.model(spec.id).path
    if configured is not None and to is None:
        raise UserError(
            f"models.{spec.id}.path is set ({configured}), so a download into the hub cache would not "
            f"be used; remove that line, or download into that folder with --to {configured}",
            param="model",
        )
    revision = revision or settings.model(spec.id).revision or "main"
    endpoint = hub_endpoint(endpoint)
    destination: Destination = (
        FolderDestination(Path(to).expanduser().absolute())
        if to is not None
        else CacheDestination(cache.hub_cache_root(cache_dir), repo)
    )
    from huggingface_hub import HfApi

    with hub_errors(spec, repo, revision, endpoint):
        info = HfApi(endpoint=endpoint).model_info(
            repo, revision=revision, files_metadata=True, timeout=HUB_TIMEOUT_S
        )
        if not info.sha:
            raise DownloadFailed(f"the hub did not say which commit {repo}@{revision} is")
        remote = _remote_files(info)
        index = _read_model_index(remote, repo, info.sha, endpoint)
    wanted = select_pipeline_files(remote, component_folders(index))
    # model_index.json last: until it is in place no tool takes the folder for a finished pipeline.
    ordered = sorted(wanted, key=lambda path: (path == MODEL_INDEX, path))
    files = tuple(remote[path] for path in ordered)
    present = frozenset(f.path for f in files if destination.is_present(info.sha, f))
    partial = {}
    for file in files:
        part = destination.partial_path(file)
        if file.path not in present and part.is_file():
            partial[file.path] = min(part.stat().st_size, file.size)
    return DownloadPlan(spec.id, repo, revision, info.sha, endpoint, files, destination, present, partial)


# --- disk ----------------------------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_disk_space(
    model_id: str,
    needed_bytes: int,
    target: Path,
    keep_free_bytes: int,
    disk_usage: DiskUsageFn = shutil.disk_usage,
) -> None:
    """Refuse, with the numbers, a download that would not fit (or would leave too little free)."""
    where = _existing_ancestor(target)
    free = int(disk_usage(str(where)).free)
    if needed_bytes + keep_free_bytes <= free:
        return
    keep = (
        f"; {human_bytes(keep_free_bytes)} must stay free (downloads.min_free_gb)" if keep_free_bytes else ""
    )
    raise NotEnoughDiskSpace(
        f"not enough disk space for {model_id}: needs {human_bytes(needed_bytes)}, "
        f"{human_bytes(free)} free on {where}{keep}. Free some space, or download elsewhere "
        "(HF_HUB_CACHE=/other/disk, or --to DIR)",
        param="model",
    )


# --- progress ------------------------------------------------------------------------------------


class _Meter:
    """Counts bytes, derives rate and ETA, and calls the callback at a bounded rate."""

    def __init__(self, plan: DownloadPlan, callback: ProgressCallback | None) -> None:
        self.plan = plan
        self.callback = callback
        self.done = plan.have_bytes
        self.fetched = 0
        self.files_done = len(plan.present)
        self.current: str | None = None
        self.samples: deque[tuple[float, int]] = deque()
        self.last_emit = 0.0
        # The first bytes of each file are always reported: a listener learns the transfer has begun.
        self.first_chunk = False

    def rate(self, now: float) -> float:
        while len(self.samples) > 1 and now - self.samples[0][0] > RATE_WINDOW_S:
            self.samples.popleft()
        if len(self.samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self.samples[0], self.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def snapshot(self) -> DownloadProgress:
        now = time.monotonic()
        rate = self.rate(now)
        left = self.plan.total_bytes - self.done
        eta = 0.0 if left <= 0 else (left / rate if rate > 0 else None)
        return DownloadProgress(
            self.plan.model_id, self.done, self.plan.total_bytes, rate, eta, self.current,
            self.files_done, len(self.plan.files),
        )  # fmt: skip

    def emit(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.callback is None or (not force and now - self.last_emit < PROGRESS_INTERVAL_S):
            return
        self.last_emit = now
        self.callback(self.snapshot())

    def start_file(self, path: str) -> None:
        self.current = path
        self.first_chunk = True
        self.emit(force=True)

    def add(self, count: int, *, transferred: bool = True) -> None:
        self.done += count
        if transferred:
            self.fetched += count
            self.samples.append((time.monotonic(), self.fetched))
        self.emit(force=transferred and self.first_chunk)
        self.first_chunk = self.first_chunk and not transferred

    def end_file(self) -> None:
        self.files_done += 1
        self.emit(force=True)


# --- transfer ------------------------------------------------------------------------------------


def _transient_errors() -> tuple[type[BaseException], ...]:
    http = _http()
    return (http.TimeoutException, http.NetworkError, http.RemoteProtocolError, _ShortBody)


class _ShortBody(Exception):
    """The server closed the response before the announced end (treated like a dropped connection)."""


def _check_cancel(cancel: threading.Event | None, model_id: str) -> None:
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled(f"download of {model_id} stopped; run it again to resume")


def _hash_existing(part: Path, digest: Any, cancel: threading.Event | None, model_id: str) -> None:
    with part.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            _check_cancel(cancel, model_id)
            digest.update(block)


def _stream_once(
    url: str, file: RemoteFile, part: Path, offset: int, digest: Any, meter: _Meter,
    cancel: threading.Event | None, headers: dict[str, str],
) -> tuple[int, Any]:  # fmt: skip
    """One GET from ``offset``; returns the new offset and hash (reset when the server ignored the range)."""
    from huggingface_hub.utils import get_session, hf_raise_for_status

    request_headers = dict(headers)
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    with get_session().stream("GET", url, headers=request_headers, timeout=HUB_TIMEOUT_S) as response:
        if response.status_code >= 400:
            response.read()
            hf_raise_for_status(response)
        mode = "ab"
        if offset and response.status_code == 206 and not _range_starts_at(response, offset):
            raise DownloadFailed(f"{file.path}: the server answered a different byte range than asked")
        if offset and response.status_code != 206:
            # The server sent the whole file: start over rather than append it to what we have.
            meter.add(-offset, transferred=False)
            offset, digest, mode = 0, file.new_hash(), "wb"
        elif not offset:
            mode = "wb"
        # Unbuffered: the bytes on disk are exactly the bytes hashed, so a kill at any point leaves a
        # prefix the next run can trust and resume from.
        with part.open(mode, buffering=0) as out:
            for chunk in response.iter_bytes():
                _check_cancel(cancel, meter.plan.model_id)
                if offset + len(chunk) > file.size:
                    raise DownloadFailed(
                        f"{file.path}: the server sent more than the {file.size} bytes announced"
                    )
                out.write(chunk)
                digest.update(chunk)
                offset += len(chunk)
                meter.add(len(chunk))
    if offset < file.size:
        raise _ShortBody(f"connection closed at byte {offset} of {file.size}")
    return offset, digest


def _range_starts_at(response: Any, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")
    unit, _, spec = content_range.partition(" ")
    return unit == "bytes" and spec.split("-", 1)[0] == str(offset)


def _fetch(
    plan: DownloadPlan, file: RemoteFile, meter: _Meter, cancel: threading.Event | None,
    headers: dict[str, str],
) -> None:  # fmt: skip
    """Bring ``file`` into place: resume its partial transfer, check its checksum, move it in."""
    part = plan.destination.partial_path(file)
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    if offset > file.size:
        part.unlink()
        meter.add(-plan.partial_bytes.get(file.path, 0), transferred=False)
        offset = 0
    digest = file.new_hash()
    if offset:
        _hash_existing(part, digest, cancel, plan.model_id)
    url = _resolve_url(plan.repo_id, file.path, plan.commit, plan.endpoint)
    failures = 0
    while offset < file.size or (file.size == 0 and not part.exists()):
        _check_cancel(cancel, plan.model_id)
        before = offset
        try:
            offset, digest = _stream_once(url, file, part, offset, digest, meter, cancel, headers)
        except _transient_errors() as exc:
            # What reached the disk is what counts (the attempt did not return its offset).
            offset = part.stat().st_size if part.is_file() else 0
            failures = 0 if offset > before else failures + 1
            if failures >= MAX_ATTEMPTS:
                raise DownloadFailed(
                    f"download of {plan.model_id} stopped at {file.path} ({type(exc).__name__}: {exc}); "
                    f"{human_bytes(meter.done)} are kept — run the same command again to resume"
                ) from None
            if failures:  # a connection that delivered bytes before dropping is retried at once
                _sleep_unless_cancelled(min(2.0**failures, MAX_RETRY_DELAY_S), cancel, plan.model_id)
            digest = file.new_hash()
            if offset:
                _hash_existing(part, digest, cancel, plan.model_id)
    if digest.hexdigest() != file.etag:
        part.unlink(missing_ok=True)
        meter.add(-file.size, transferred=False)
        raise DownloadFailed(
            f"{file.path} arrived damaged (its checksum does not match the hub's); the bad copy was deleted, "
            f"run the same command again"
        )
    plan.destination.place(plan.commit, file, part)


def _sleep_unless_cancelled(seconds: float, cancel: threading.Event | None, model_id: str) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        _check_cancel(cancel, model_id)


@contextlib.contextmanager
def _file_lock(plan: DownloadPlan, file: RemoteFile) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock_path = plan.destination.lock_path(file)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(
            f"another download is fetching {file.path} of {plan.repo_id} right now; wait for it to finish",
            param="model",
        ) from None
    try:
        yield
    finally:
        lock.release()


def execute_plan(
    plan: DownloadPlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Fetch what the plan still needs (call :func:`check_disk_space` first), then verify the folder."""
    started = time.perf_counter()
    meter = _Meter(plan, on_progress)
    plan.destination.begin(plan.revision, plan.commit)
    headers = _request_headers()
    spec = get_model(plan.model_id)
    meter.emit(force=True)
    for file in plan.files:
        if file.path in plan.present:
            continue
        _check_cancel(cancel, plan.model_id)
        meter.start_file(file.path)
        if plan.destination.reuse(plan.commit, file):
            meter.add(file.size - plan.partial_bytes.get(file.path, 0), transferred=False)
        else:
            with _file_lock(plan, file), hub_errors(spec, plan.repo_id, plan.revision, plan.endpoint):
                _fetch(plan, file, meter, cancel, headers)
        meter.end_file()
    plan.destination.finish()
    meter.current = None
    meter.emit(force=True)
    report = verify_model_dir(plan.folder)
    if not report.ok:
        raise DownloadFailed(
            f"{plan.model_id} was downloaded to {plan.folder} but does not verify: {report.summary()}"
        )
    return DownloadResult(
        plan.model_id, plan.folder, plan.repo_id, plan.commit, meter.fetched, plan.total_bytes,
        len(plan.files), time.perf_counter() - started, report,
    )  # fmt: skip


def download_model(
    settings: Settings,
    model_id: str,
    *,
    revision: str | None = None,
    to: Path | None = None,
    on_progress: ProgressCallback | None = None,
    on_plan: Callable[[DownloadPlan], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: DiskUsageFn = shutil.disk_usage,
) -> DownloadResult:
    """Download ``model_id`` (the files its pipeline needs) and verify it; resumes anything interrupted.

    Refuses before fetching anything when the disk is too small. ``on_progress`` receives
    :class:`DownloadProgress` events; setting ``cancel`` stops at the next chunk with
    :class:`~imagestudio.errors.DownloadCancelled`, keeping what was fetched for the next run.
    When the hub cannot be reached but the model is already here and whole, that is the result.
    """
    from imagestudio.models.state import model_state

    spec = get_model(model_id)
    started = time.perf_counter()
    try:
        plan = plan_download(
            settings, model_id, revision=revision, to=to, endpoint=endpoint, cache_dir=cache_dir
        )
    except ModelNotAvailable:
        state = model_state(spec, settings, cache_dir)
        if to is not None or revision is not None or state.state != "present" or state.path is None:
            raise
        report = verify_model_dir(state.path)
        elapsed = time.perf_counter() - started
        note = "already here; the hub could not be asked for a newer version (offline or unreachable)"
        return DownloadResult(
            spec.id, state.path, state.repo, None, 0, state.size_bytes, 0, elapsed, report, note
        )
    keep_free = int(settings.downloads.min_free_gb * 1000**3)
    check_disk_space(spec.id, plan.fetch_bytes, plan.destination.disk_target(), keep_free, disk_usage)
    if on_plan is not None:
        on_plan(plan)
    return execute_plan(plan, on_progress=on_progress, cancel=cancel)
