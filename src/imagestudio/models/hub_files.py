"""A few named files of one hub repository into the hub cache: the download of an upscaler or a detector.

The same pieces as a model's download (the disk check, resumable transfers checked against the hub's
SHA-256, progress, the cache layout), for the handful of files a small extra model is made of. A file
whose published SHA-256 is known (``expected``) must be that file: a changed upstream file is refused
rather than used.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import DownloadFailed
from imagestudio.models import cache

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.models.destinations import Destination
    from imagestudio.models.progress import ProgressCallback
    from imagestudio.registry import DetectorSpec, UpscalerSpec


def fetch_hub_files(
    settings: Settings,
    spec: UpscalerSpec | DetectorSpec,
    repo: str,
    filenames: tuple[str, ...],
    *,
    expected: dict[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: Any = shutil.disk_usage,
    destination: Destination | None = None,
) -> Path:
    """``filenames`` of ``repo`` (at ``main``) in the hub cache (or ``destination``); returns the folder
    holding them.

    Raises :class:`~imagestudio.errors.ModelNotAvailable` when the hub cannot be asked (offline, no
    network); the caller decides whether a copy already here will do.
    """
    from huggingface_hub import HfApi

    from imagestudio.models.destinations import CacheDestination
    from imagestudio.models.download import _remote_files, check_disk_space, hub_endpoint, hub_errors
    from imagestudio.models.progress import ProgressMeter
    from imagestudio.models.transfer import HUB_TIMEOUT_S, exclusive, fetch_file, request_headers, resolve_url

    endpoint = hub_endpoint(endpoint)
    revision = "main"
    with hub_errors(spec, repo, revision, endpoint):
        info = HfApi(endpoint=endpoint).model_info(
            repo, revision=revision, files_metadata=True, timeout=HUB_TIMEOUT_S
        )
    listed = _remote_files(info)
    if not info.sha:
        raise DownloadFailed(
            f"{repo} answered without a commit", code="download_bad_answer", details={"repo": repo}
        )
    sha: str = info.sha
    remotes = []
    for name in filenames:
        remote = listed.get(name)
        if remote is None:
            raise DownloadFailed(
                f"{repo} has no {name} any more", code="download_bad_answer", details={"repo": repo}
            )
        published = (expected or {}).get(name)
        if published is not None and remote.etag != published:
            raise DownloadFailed(
                f"{name} in {repo} is not the file this version knows (SHA-256 {remote.etag[:12]}…, "
                f"expected {published[:12]}…); refusing to use it",
                code="download_changed_upstream",
                details={"repo": repo},
            )
        remotes.append(remote)
    if destination is None:
        destination = CacheDestination(cache.hub_cache_root(cache_dir), repo)
    folder = destination.folder(sha)
    missing = [remote for remote in remotes if not destination.is_present(sha, remote)]
    if not missing:
        return folder
    parts = {remote.path: destination.partial_path(remote) for remote in missing}
    have = {
        path: min(part.stat().st_size, remote.size) if part.is_file() else 0
        for remote in missing
        for path, part in [(remote.path, parts[remote.path])]
    }
    total, done = sum(r.size for r in missing), sum(have.values())
    keep_free = int(settings.downloads.min_free_gb * 1000**3)
    check_disk_space(spec.id, total - done, destination.disk_target(), keep_free, disk_usage)
    meter = ProgressMeter(spec.id, total, have_bytes=done, files_total=len(missing), callback=on_progress)
    destination.begin(revision, sha)
    for remote in missing:
        if destination.reuse(sha, remote):
            continue
        meter.start_file(remote.path)
        url = resolve_url(repo, remote.path, sha, endpoint)
        with (
            exclusive(destination.lock_path(remote), f"{remote.path} of {repo}"),
            hub_errors(spec, repo, revision, endpoint),
        ):
            part = parts[remote.path]
            headers = request_headers()
            fetch_file(remote, url, part, meter, model_id=spec.id, cancel=cancel, headers=headers)
        destination.place(sha, remote, parts[remote.path])
        meter.end_file()
    meter.current = None
    meter.emit(force=True)
    return folder
