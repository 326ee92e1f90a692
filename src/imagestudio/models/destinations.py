"""Where fetched files go, and what one remote file is.

Two destinations share one interface: the Hugging Face cache (blobs named by checksum, snapshot links
per commit: found by every tool that uses that cache) and a plain folder (``models download --to``).
Either way a file appears under its final name only complete and checked, by one rename; until then it
is ``<etag>.incomplete`` beside it, from which the next attempt resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from imagestudio.models import cache
from imagestudio.models.state import FOLDER_PARTIAL_DIR


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
