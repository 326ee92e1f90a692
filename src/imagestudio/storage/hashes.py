"""SHA-256 of weight files, computed once and remembered on disk.

Other tools identify a model or a LoRA by the hash of its file (AUTOMATIC1111's ``Model hash`` is the
first 10 hex digits of the file's SHA-256, its ``Lora hashes`` the first 12; Civitai looks files up by
the same digest). Hashing a 25 GB transformer takes a minute, so the digest is cached in a small JSON
file keyed by path, size and modification time: a file that changes is hashed again, one that doesn't
never is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from imagestudio.storage.files import atomic_write_text

log = logging.getLogger(__name__)

MODEL_HASH_CHARS = 10
LORA_HASH_CHARS = 12
_CHUNK = 8 * 1024 * 1024
#: Weights at least this big are hashed in the background instead of delaying the image.
BACKGROUND_FROM_BYTES = 2 * 1024**3


class HashCache:
    """Digests of files in a JSON file; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        #: Keys being hashed in the background, so a big file is read once, not once per image.
        self._pending: set[str] = set()

    def sha256_soon(
        self, files: Sequence[Path], *, wait_below_bytes: int = BACKGROUND_FROM_BYTES
    ) -> str | None:
        """The digest when it is known or quick to get; for big files (a 25 GB transformer takes a minute
        or more to read) None now, with the hashing started in the background for later images."""
        key = self._key(files)
        with self._lock:
            cached = self._read().get(key)
            if cached or key in self._pending:
                return cached
        if sum(file.stat().st_size for file in files) < wait_below_bytes:
            return self.sha256(files)
        with self._lock:
            if key in self._pending:
                return None
            self._pending.add(key)

        def work() -> None:
            try:
                log.info("hashing %s for the images' Model hash (once; it is remembered)", files[0].parent)
                self.sha256(files)
            except OSError as exc:
                log.warning("could not hash %s: %s", files[0].parent, exc)
            finally:
                with self._lock:
                    self._pending.discard(key)

        threading.Thread(target=work, name="imagestudio-hash", daemon=True).start()
        return None

    def cached(self, files: Sequence[Path]) -> str | None:
        """The digest of ``files`` if it was computed before for these very versions; never hashes."""
        try:
            key = self._key(files)
        except OSError:
            return None
        with self._lock:
            return self._read().get(key)

    def sha256(self, files: Sequence[Path]) -> str:
        """The SHA-256 of ``files`` read one after another (one file: that file's usual digest)."""
        key = self._key(files)
        with self._lock:
            cached = self._read().get(key)
        if cached:
            return cached
        digest = hashlib.sha256()
        for file in files:
            with file.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        value = digest.hexdigest()
        with self._lock:
            entries = self._read()
            entries[key] = value
            try:
                atomic_write_text(self.path, json.dumps(entries, indent=0, sort_keys=True))
            except OSError as exc:  # a read-only home only costs hashing again next time
                log.warning("could not save the hash cache %s: %s", self.path, exc)
        return value

    @staticmethod
    def _key(files: Sequence[Path]) -> str:
        stats = [file.stat() for file in files]
        return "|".join(
            f"{file.resolve()}:{st.st_size}:{st.st_mtime_ns}" for file, st in zip(files, stats, strict=True)
        )

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def transformer_files(model_dir: Path) -> list[Path]:
    """The transformer's weight files of a diffusers folder (sharded or not), in name order."""
    folder = model_dir / "transformer"
    return sorted(folder.glob("*.safetensors")) if folder.is_dir() else []


def model_hash(cache: HashCache, model_dir: Path | None) -> str | None:
    """A1111's short ``Model hash`` of the transformer weights; None when they can't be found, or while
    big weights are still being hashed in the background (the first images of a new model)."""
    return weights_hash(cache, transformer_files(model_dir) if model_dir is not None else [])


def weights_hash(cache: HashCache, files: Sequence[Path]) -> str | None:
    """A1111's short ``Model hash`` of the transformer files that ran (a diffusers folder's shards, or one
    GGUF file); None as :func:`model_hash` says."""
    if not files:
        return None
    try:
        digest = cache.sha256_soon(files)
    except OSError as exc:
        log.warning("could not hash the weights %s: %s", files[0], exc)
        return None
    return digest[:MODEL_HASH_CHARS] if digest else None


def lora_name(source: str) -> str:
    """The name a LoRA goes by in ``<lora:NAME:scale>``: its file's stem, or the repo's name."""
    name = source.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".safetensors") or source
