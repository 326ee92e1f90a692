"""The Hugging Face hub cache, read and written in huggingface_hub's own layout.

```
$HF_HUB_CACHE/models--Tongyi-MAI--Z-Image-Turbo/
  blobs/<etag>                 file contents, named by sha256 (LFS files) or git blob id (others)
  blobs/<etag>.incomplete      a transfer in progress (resumed from its size)
  refs/main                    the commit a branch or tag pointed at when last fetched
  snapshots/<commit>/<path>    relative symlinks to the blobs (or the files themselves where
                               symlinks are not available)
```

Using this layout (rather than a folder of our own) means a model someone already fetched with
``huggingface_hub``/``diffusers`` is found and never fetched twice, ours is found by them, and
``HF_HOME``/``HF_HUB_CACHE`` move everything to another disk. The cache location is read from
``huggingface_hub.constants`` when called, never copied at import. Nothing here touches the network.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path

COMMIT_HASH = re.compile(r"^[0-9a-f]{40}$")
PARTIAL_SUFFIX = ".incomplete"


def hub_cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir`` if given, else huggingface_hub's (``HF_HUB_CACHE``, ``HF_HOME``/hub, ~/.cache/…)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def repo_storage(repo_id: str, cache_dir: Path | str | None = None) -> Path:
    """The repository's folder in the cache (``models--org--name``, as huggingface_hub names it)."""
    return hub_cache_root(cache_dir) / ("models--" + repo_id.replace("/", "--"))


def cached_commit(storage: Path, revision: str) -> str | None:
    """The commit a revision resolves to locally: itself when it is a commit, else ``refs/<revision>``."""
    if COMMIT_HASH.match(revision):
        return revision
    try:
        commit = (storage / "refs" / revision).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if COMMIT_HASH.match(commit) else None


def cached_snapshot(
    repo_id: str, revision: str | None = None, cache_dir: Path | str | None = None
) -> Path | None:
    """The snapshot folder for ``revision`` (default ``main``) if the cache has one, complete or not."""
    storage = repo_storage(repo_id, cache_dir)
    commit = cached_commit(storage, revision or "main")
    if commit is None:
        return None
    folder = storage / "snapshots" / commit
    return folder if folder.is_dir() else None


def partial_files(repo_id: str, cache_dir: Path | str | None = None) -> list[Path]:
    """Transfers of this repository that were interrupted (resumed by the next download)."""
    blobs = repo_storage(repo_id, cache_dir) / "blobs"
    return sorted(blobs.glob(f"*{PARTIAL_SUFFIX}")) if blobs.is_dir() else []


def write_ref(storage: Path, revision: str, commit: str) -> None:
    """Record that ``revision`` (a branch or tag) points at ``commit``, atomically."""
    if revision == commit:
        return
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    staging = ref.with_name(f".{ref.name}.{uuid.uuid4().hex}.tmp")
    staging.write_text(commit, encoding="utf-8")
    staging.replace(ref)


def link_into_snapshot(blob: Path, pointer: Path) -> None:
    """Make ``pointer`` (a snapshot path) refer to ``blob``: a relative symlink, as huggingface_hub makes.

    Where symlinks cannot be made (Windows without developer mode) the blob itself is moved to the
    snapshot, which is what huggingface_hub does there too.
    """
    pointer.parent.mkdir(parents=True, exist_ok=True)
    staging = pointer.with_name(f".{pointer.name}.{uuid.uuid4().hex}.tmp")
    try:
        staging.symlink_to(os.path.relpath(blob, pointer.parent))
    except OSError:
        shutil.move(str(blob), str(pointer))
        return
    try:
        staging.replace(pointer)
    finally:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
