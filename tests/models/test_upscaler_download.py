"""An upscaler's one file from a local fake hub: resumed after a drop, checked, found, loaded by spandrel."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from imagestudio import registry
from imagestudio.errors import DownloadFailed
from imagestudio.models.upscalers import (
    build_tiny_upscaler,
    download_upscaler,
    find_upscaler_file,
    require_upscaler_file,
)
from tests.models.fakehub import FakeHub

pytestmark = pytest.mark.usefixtures("hub_online")

REAL = registry.UPSCALERS["realesrgan-x4plus"]


@pytest.fixture
def upscaler_bytes(tmp_path: Path) -> bytes:
    # The fake hub serves a real spandrel file under the real name; the registry's published checksum is
    # made to be this file's, as it is the real file's for the real repository.
    return build_tiny_upscaler(tmp_path / "weights.safetensors").read_bytes()


@pytest.fixture
def served(upscaler_bytes: bytes, monkeypatch: pytest.MonkeyPatch):
    hub = FakeHub()
    hub.add_repo(REAL.repo_id or "", files={REAL.filename: upscaler_bytes, "README.md": b"# upscaler"})
    hub.start()
    spec = dataclasses.replace(REAL, sha256=hashlib.sha256(upscaler_bytes).hexdigest())
    monkeypatch.setitem(registry.UPSCALERS, REAL.id, spec)
    yield hub
    hub.close()


def test_download_resumes_checks_and_is_found(served, settings, tmp_path: Path, upscaler_bytes) -> None:
    from imagestudio.engine.upscale import load_upscaler

    cache = tmp_path / "hf-cache"
    with pytest.raises(Exception, match="imagestudio models download realesrgan-x4plus"):
        require_upscaler_file(registry.UPSCALERS[REAL.id], settings)
    served.drop(REAL.repo_id, REAL.filename, 1000)
    path = download_upscaler(settings, REAL.id, endpoint=served.url, cache_dir=cache)
    assert path.read_bytes() == upscaler_bytes
    first, second = served.gets(REAL.filename)
    assert first.bytes_sent == 1000 and second.range == "bytes=1000-"
    assert [entry.path for entry in served.log if entry.path == "README.md"] == []  # only the weights
    assert find_upscaler_file(registry.UPSCALERS[REAL.id], settings, cache_dir=cache) == path
    assert load_upscaler(path, "cpu").scale == 2
    # a second run finds it and fetches nothing
    before = len(served.gets(REAL.filename))
    assert download_upscaler(settings, REAL.id, endpoint=served.url, cache_dir=cache) == path
    assert len(served.gets(REAL.filename)) == before


def test_a_file_other_than_the_published_one_is_refused(
    served, settings, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(registry.UPSCALERS, REAL.id, dataclasses.replace(REAL, sha256="0" * 64))
    with pytest.raises(DownloadFailed, match="not the file this version knows"):
        download_upscaler(settings, REAL.id, endpoint=served.url, cache_dir=tmp_path / "hf-cache")
    assert not list((tmp_path / "hf-cache").rglob("*.safetensors"))
