"""Moving one file's bytes: resumable, retried, hashed as they are written.

huggingface_hub (1.x onwards) downloads into a fresh temporary name per process and deletes it on
failure, so a download killed after 20 GB of a 25 GB file starts over. Here the transfer file has a
stable name (``<etag>.incomplete``), is written unbuffered — what is on disk is exactly what was hashed
— and each attempt asks for ``Range: bytes=<size on disk>-``. A connection that drops after delivering
bytes is retried at once; one that delivers nothing backs off, and gives up after ``MAX_ATTEMPTS``. The
finished file must match the checksum the hub published (sha256 for LFS files, the git blob id for
the others) or it is deleted. Cancellation is checked at every chunk.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagestudio.errors import DownloadCancelled, DownloadFailed, UserError
from imagestudio.models.destinations import RemoteFile
from imagestudio.models.progress import ProgressMeter
from imagestudio.models.units import human_bytes

#: Seconds to wait for the hub to connect or to send the next bytes before calling it unreachable.
HUB_TIMEOUT_S = 15.0
#: Consecutive failed attempts (without a byte of progress) before a transfer gives up.
MAX_ATTEMPTS = 5
#: The longest wait between two such attempts (they back off 2 s, 4 s, 8 s, … up to this).
MAX_RETRY_DELAY_S = 10.0
_READ_BLOCK = 8 * 1024 * 1024


def http_package() -> Any:
    """The HTTP client package huggingface_hub is built on (httpx2 from 2.x, httpx in 1.x)."""
    try:
        import httpx2
    except ImportError:  # huggingface_hub 1.x
        import httpx

        return httpx
    return httpx2


def resolve_url(repo: str, path: str, commit: str, endpoint: str) -> str:
    from huggingface_hub import hf_hub_url

    return hf_hub_url(repo, path, revision=commit, endpoint=endpoint)


def request_headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers()
    # Byte ranges and checksums are over the stored bytes: the hub gzips text files unless told not to.
    headers["Accept-Encoding"] = "identity"
    return headers


def transient_errors() -> tuple[type[BaseException], ...]:
    http = http_package()
    return (http.TimeoutException, http.NetworkError, http.RemoteProtocolError, _ShortBody)


class _ShortBody(Exception):
    """The server closed the response before the announced end (treated like a dropped connection)."""


def check_cancel(cancel: threading.Event | None, model_id: str) -> None:
    if cancel is not None and cancel.is_set():
        raise DownloadCancelled(f"download of {model_id} stopped; run it again to resume")


def _hash_existing(part: Path, digest: Any, cancel: threading.Event | None, model_id: str) -> None:
    with part.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            check_cancel(cancel, model_id)
            digest.update(block)


def _stream_once(
    url: str, file: RemoteFile, part: Path, offset: int, digest: Any, meter: ProgressMeter,
    cancel: threading.Event | None, headers: dict[str, str], model_id: str,
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
            raise DownloadFailed(
                f"{file.path}: the server answered a different byte range than asked",
                code="download_bad_bytes",
                details={"file": file.path},
            )
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
                check_cancel(cancel, model_id)
                if offset + len(chunk) > file.size:
                    raise DownloadFailed(
                        f"{file.path}: the server sent more than the {file.size} bytes announced",
                        code="download_bad_bytes",
                        details={"file": file.path},
                    )
                out.write(chunk)
                digest.update(chunk)
                offset += len(chunk)
                meter.add(len(chunk))
    if offset < file.size:
        raise _ShortBody(f"connection closed at byte {offset} of {file.size}")
    return offset, digest


def _range_starts_at(response: Any, offset: int) -> bool:
    content_range: str = response.headers.get("Content-Range", "")
    unit, _, spec = content_range.partition(" ")
    return unit == "bytes" and spec.split("-", 1)[0] == str(offset)


def fetch_file(
    file: RemoteFile, url: str, part: Path, meter: ProgressMeter, *, model_id: str,
    cancel: threading.Event | None = None, headers: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """Make ``part`` hold ``file`` complete and checked: resume it, retry drops, compare the checksum.

    Raises :class:`~imagestudio.errors.DownloadFailed` (the part is kept, unless it proved damaged) or
    :class:`~imagestudio.errors.DownloadCancelled`. Moving the file into place is the caller's job.
    """
    headers = headers if headers is not None else request_headers()
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    if offset > file.size:
        part.unlink()
        meter.add(-file.size, transferred=False)
        offset = 0
    digest = file.new_hash()
    if offset:
        _hash_existing(part, digest, cancel, model_id)
    failures = 0
    while offset < file.size or (file.size == 0 and not part.exists()):
        check_cancel(cancel, model_id)
        before = offset
        try:
            offset, digest = _stream_once(url, file, part, offset, digest, meter, cancel, headers, model_id)
        except transient_errors() as exc:
            # What reached the disk is what counts (the attempt did not return its offset).
            offset = part.stat().st_size if part.is_file() else 0
            failures = 0 if offset > before else failures + 1
            if failures >= MAX_ATTEMPTS:
                raise DownloadFailed(
                    f"download of {model_id} stopped at {file.path} ({type(exc).__name__}: {exc}); "
                    f"{human_bytes(meter.done)} are kept — run the same command again to resume",
                    code="download_stopped",
                    details={"model": model_id, "file": file.path, "kept": human_bytes(meter.done)},
                ) from None
            if failures:  # a connection that delivered bytes before dropping is retried at once
                _sleep_unless_cancelled(min(2.0**failures, MAX_RETRY_DELAY_S), cancel, model_id)
            digest = file.new_hash()
            if offset:
                _hash_existing(part, digest, cancel, model_id)
    if digest.hexdigest() != file.etag:
        part.unlink(missing_ok=True)
        meter.add(-file.size, transferred=False)
        raise DownloadFailed(
            f"{file.path} arrived damaged (its checksum does not match the hub's); the bad copy was deleted, "
            f"run the same command again",
            code="download_damaged",
            details={"file": file.path},
        )


def _sleep_unless_cancelled(seconds: float, cancel: threading.Event | None, model_id: str) -> None:
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        check_cancel(cancel, model_id)


@contextlib.contextmanager
def exclusive(lock_path: Path, what: str) -> Iterator[None]:
    """Hold ``lock_path`` while fetching ``what``; another process already holding it is an error."""
    from filelock import FileLock, Timeout

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UserError(
            f"another download is fetching {what} right now; wait for it to finish",
            param="model",
            code="download_busy",
            details={"what": str(what)},
        ) from None
    try:
        yield
    finally:
        lock.release()
