"""Downloads against a local fake hub (real HTTP on 127.0.0.1), in-process.

These call the service functions the API and UI will call, with ``endpoint=``/``cache_dir=`` given
explicitly; ``test_cli_download.py`` runs the CLI as a user does, configured by environment variables.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections import namedtuple
from pathlib import Path

import pytest

from imagestudio.errors import (
    DownloadCancelled,
    DownloadFailed,
    ModelNotAvailable,
    NotEnoughDiskSpace,
    UserError,
)
from imagestudio.models.background import BackgroundDownloads
from imagestudio.models.cache import repo_storage
from imagestudio.models.download import check_disk_space, download_model, plan_download
from imagestudio.models.progress import DownloadProgress
from imagestudio.models.removal import plan_removal, remove_model
from imagestudio.models.state import model_state
from imagestudio.models.verify import verify_model_dir
from imagestudio.registry import get_model
from tests.models.conftest import BIG_FILE, JUNK_FILES, TEST_REPO

pytestmark = pytest.mark.usefixtures("hub_online")

Usage = namedtuple("Usage", "total used free")


def test_download_fetches_what_the_pipeline_needs(fake_hub, mirror_settings, hub_cache, hub_repo_dir) -> None:
    events: list[DownloadProgress] = []
    result = download_model(
        mirror_settings,
        "z-image-turbo",
        endpoint=fake_hub.url,
        cache_dir=hub_cache,
        on_progress=events.append,
    )
    repo = fake_hub.repos[TEST_REPO]
    fetched = {s.path for s in fake_hub.gets()}
    assert fetched.isdisjoint(JUNK_FILES)
    assert "transformer/diffusion_pytorch_model-00002-of-00002.safetensors" in fetched
    # model_index.json is read once to plan and fetched last, after everything it names.
    assert [s.path for s in fake_hub.gets()][-1] == "model_index.json"

    assert result.report.ok
    assert result.fetched_bytes == result.total_bytes == sum(len(repo.files[p]) for p in fetched)
    snapshot = repo_storage(TEST_REPO, hub_cache) / "snapshots" / repo.sha
    assert result.folder == snapshot
    assert (repo_storage(TEST_REPO, hub_cache) / "refs" / "main").read_text() == repo.sha
    for path in fetched:
        local = snapshot / path
        assert local.is_symlink()  # the hub cache layout: snapshot links to blobs named by checksum
        assert local.resolve().name == repo.etag(path)
        assert local.read_bytes() == (hub_repo_dir / path).read_bytes()
    assert not list(hub_cache.rglob("*.incomplete"))

    done = [e.done_bytes for e in events]
    assert done == sorted(done)
    assert events[-1].done_bytes == events[-1].total_bytes == result.total_bytes
    assert events[-1].files_done == events[-1].files_total == result.files
    assert {e.current_file for e in events} >= {BIG_FILE, "model_index.json"}

    # huggingface_hub itself finds the snapshot, and its cache scan sees a sane repository.
    from huggingface_hub import scan_cache_dir, snapshot_download

    assert Path(snapshot_download(TEST_REPO, cache_dir=hub_cache, local_files_only=True)) == snapshot
    scanned = scan_cache_dir(hub_cache)
    assert not scanned.warnings
    [cached_repo] = scanned.repos
    assert cached_repo.size_on_disk == result.total_bytes

    # A second download asks the hub what is current and fetches nothing.
    before = len(fake_hub.gets())
    again = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert again.fetched_bytes == 0
    assert len(fake_hub.gets()) == before + 1  # only the in-memory read of model_index.json
    assert model_state(get_model("z-image-turbo"), mirror_settings, hub_cache).state == "present"


def test_dropped_connection_resumes_in_place(fake_hub, mirror_settings, hub_cache) -> None:
    size = len(fake_hub.repos[TEST_REPO].files[BIG_FILE])
    fake_hub.drop(TEST_REPO, BIG_FILE, 100_000)
    result = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert result.report.ok
    first, second = fake_hub.gets(BIG_FILE)
    assert (first.bytes_sent, first.range) == (100_000, None)
    assert (second.range, second.status, second.bytes_sent) == ("bytes=100000-", 206, size - 100_000)


def test_a_dead_connection_gives_up_and_keeps_nothing_wrong(
    fake_hub, mirror_settings, hub_cache, monkeypatch
) -> None:
    from imagestudio.models import transfer

    monkeypatch.setattr(transfer, "MAX_RETRY_DELAY_S", 0.0)  # the back-off's length is not under test
    fake_hub.drop(TEST_REPO, BIG_FILE, 0, times=transfer.MAX_ATTEMPTS)
    with pytest.raises(DownloadFailed, match=f"stopped at {BIG_FILE}.*run the same command again to resume"):
        download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert len(fake_hub.gets(BIG_FILE)) == transfer.MAX_ATTEMPTS
    snapshot = repo_storage(TEST_REPO, hub_cache) / "snapshots" / fake_hub.repos[TEST_REPO].sha
    assert not (snapshot / BIG_FILE).exists()
    assert download_model(
        mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache
    ).report.ok


def test_cancel_keeps_the_part_and_the_next_run_resumes(fake_hub, mirror_settings, hub_cache) -> None:
    cancel = threading.Event()

    def on_progress(event: DownloadProgress) -> None:
        if event.current_file == BIG_FILE and event.done_bytes > seen_before_big_file[0]:
            cancel.set()
        elif event.current_file != BIG_FILE:
            seen_before_big_file[0] = event.done_bytes

    seen_before_big_file = [0]
    fake_hub.stall(TEST_REPO, BIG_FILE, 200_000)  # the file never completes in this run
    with pytest.raises(DownloadCancelled, match="run it again to resume"):
        download_model(
            mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache,
            on_progress=on_progress, cancel=cancel,
        )  # fmt: skip
    [part] = hub_cache.rglob("*.incomplete")
    kept = part.stat().st_size
    assert 0 < kept <= 200_000
    state = model_state(get_model("z-image-turbo"), mirror_settings, hub_cache)
    assert state.state == "partial"
    assert "download interrupted" in (state.problem or "")

    fake_hub.release.set()
    result = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert result.report.ok
    resumed = fake_hub.gets(BIG_FILE)[-1]
    assert (resumed.range, resumed.bytes_sent) == (
        f"bytes={kept}-",
        len(fake_hub.repos[TEST_REPO].files[BIG_FILE]) - kept,
    )


def test_disk_space_is_checked_before_any_transfer(fake_hub, mirror_settings, hub_cache) -> None:
    plan = plan_download(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    needed = plan.fetch_bytes
    keep = int(mirror_settings.downloads.min_free_gb * 1000**3)
    with pytest.raises(NotEnoughDiskSpace) as refused:
        download_model(
            mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache,
            disk_usage=lambda path: Usage(10**12, 10**12 - keep - needed + 1, keep + needed - 1),
        )  # fmt: skip
    message = refused.value.message
    assert f"needs 2.1 MB, 2.0 GB free on {hub_cache.parent}" in message  # the nearest existing folder
    assert "downloads.min_free_gb" in message
    assert {s.path for s in fake_hub.gets()} == {"model_index.json"}  # read for the plan; nothing written
    assert not hub_cache.exists()
    # Exactly enough is enough.
    download_model(
        mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache,
        disk_usage=lambda path: Usage(10**12, 0, keep + needed),
    )  # fmt: skip


def test_disk_message_numbers() -> None:
    with pytest.raises(NotEnoughDiskSpace) as refused:
        check_disk_space(
            "z-image-turbo", int(32.9e9), Path("/"), 0, disk_usage=lambda path: Usage(0, 0, int(12.1e9))
        )
    assert refused.value.message.startswith(
        "not enough disk space for z-image-turbo: needs 32.9 GB, 12.1 GB free on /."
    )


def test_partial_bytes_are_not_counted_again(fake_hub, mirror_settings, hub_cache) -> None:
    plan = plan_download(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    # A part left by an earlier run (here: written as the hub would have sent it).
    part = plan.destination.partial_path(next(f for f in plan.files if f.path == BIG_FILE))
    part.parent.mkdir(parents=True)
    part.write_bytes(fake_hub.repos[TEST_REPO].files[BIG_FILE][:300_000])
    again = plan_download(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert again.partial_bytes == {BIG_FILE: 300_000}
    assert again.fetch_bytes == plan.fetch_bytes - 300_000


def test_a_model_cached_by_huggingface_hub_is_not_fetched_again(fake_hub, mirror_settings, hub_cache) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(TEST_REPO, cache_dir=hub_cache, endpoint=fake_hub.url)  # the whole repo, hub's way
    gets_before = len(fake_hub.gets())
    result = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert result.fetched_bytes == 0
    assert result.report.ok
    assert len(fake_hub.gets()) == gets_before + 1  # model_index.json, read to plan

    # A snapshot link gone but its blob still there (another revision shares it): relinked, not fetched.
    link = result.folder / BIG_FILE
    blob = link.resolve()
    link.unlink()
    again = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert again.fetched_bytes == 0
    assert link.resolve() == blob
    assert len(fake_hub.gets()) == gets_before + 2


def test_one_transfer_per_file_across_processes(fake_hub, mirror_settings, hub_cache) -> None:
    from filelock import FileLock

    plan = plan_download(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    big = next(f for f in plan.files if f.path == BIG_FILE)
    lock_path = plan.destination.lock_path(big)
    assert (
        lock_path.parent == hub_cache / ".locks" / "models--imagestudio-test--tiny-z-image"
    )  # hub's own lock
    lock_path.parent.mkdir(parents=True)
    with FileLock(str(lock_path)), pytest.raises(UserError, match="another download is fetching"):
        download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert not fake_hub.gets(BIG_FILE)


def test_damaged_transfer_is_never_placed(fake_hub, mirror_settings, hub_cache) -> None:
    repo = fake_hub.repos[TEST_REPO]
    good = repo.files[BIG_FILE]
    repo.tampered[BIG_FILE] = good[:-1] + bytes([good[-1] ^ 1])  # same size, one bit flipped
    with pytest.raises(DownloadFailed, match="arrived damaged"):
        download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert not list(hub_cache.rglob("*.incomplete"))
    snapshot = repo_storage(TEST_REPO, hub_cache) / "snapshots" / repo.sha
    assert not (snapshot / BIG_FILE).exists()
    assert not (snapshot / "model_index.json").exists()
    assert model_state(get_model("z-image-turbo"), mirror_settings, hub_cache).state == "partial"
    del repo.tampered[BIG_FILE]
    assert download_model(
        mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache
    ).report.ok


def test_download_to_a_plain_folder(fake_hub, mirror_settings, tmp_path) -> None:
    target = tmp_path / "models" / "zit"
    result = download_model(mirror_settings, "z-image-turbo", to=target, endpoint=fake_hub.url)
    assert result.folder == target
    assert verify_model_dir(target).ok
    assert not (target / ".imagestudio-download").exists()
    assert not any(p.is_symlink() for p in target.rglob("*"))
    assert (
        download_model(mirror_settings, "z-image-turbo", to=target, endpoint=fake_hub.url).fetched_bytes == 0
    )


def test_hub_errors_are_one_line(fake_hub, mirror_settings, hub_cache, monkeypatch) -> None:
    mirror_settings.models["z-image-turbo"].repo = "imagestudio-test/nothing-here"
    with pytest.raises(UserError, match="repository imagestudio-test/nothing-here was not found"):
        download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    mirror_settings.models["z-image-turbo"].repo = TEST_REPO
    with pytest.raises(UserError, match="revision 'v9' does not exist"):
        download_model(
            mirror_settings, "z-image-turbo", revision="v9", endpoint=fake_hub.url, cache_dir=hub_cache
        )
    with pytest.raises(UserError, match="nothing to download"):
        download_model(mirror_settings, "tiny-z-image", endpoint=fake_hub.url, cache_dir=hub_cache)

    with socket.socket() as sock:  # a port nobody listens on: a machine without the hub
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ModelNotAvailable) as unreachable:
        download_model(mirror_settings, "z-image-turbo", endpoint=closed, cache_dir=hub_cache)
    assert "about 32.9 GB" in unreachable.value.message
    assert "cannot be reached" in unreachable.value.message
    assert "imagestudio models download z-image-turbo" in unreachable.value.message

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotAvailable, match="HF_HUB_OFFLINE=1 forbids"):
        download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert not fake_hub.log and len(fake_hub.api_calls) == 2  # the two refused lookups above, nothing else


def test_offline_with_the_model_present_is_not_an_error(
    fake_hub, mirror_settings, hub_cache, monkeypatch
) -> None:
    download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    assert result.fetched_bytes == 0 and result.report.ok
    assert result.note is not None and "already here" in result.note


def test_service_runs_downloads_in_the_background(fake_hub, mirror_settings, hub_cache) -> None:
    service = BackgroundDownloads(mirror_settings, endpoint=fake_hub.url, cache_dir=hub_cache)
    assert {s.id: s.state for s in service.states()}["z-image-turbo"] == "missing"
    fake_hub.stall(TEST_REPO, BIG_FILE, 50_000)
    seen: list[DownloadProgress] = []
    handle = service.start("z-image-turbo", on_progress=seen.append)
    assert service.start("z-image-turbo") is handle  # one download per model at a time
    assert service.cancel("z-image-turbo")
    fake_hub.release.set()
    assert handle.wait(60)
    assert handle.status == "cancelled", handle.error
    assert handle.as_json()["status"] == "cancelled"

    handle = service.start("z-image-turbo")
    assert handle.wait(60)
    assert handle.status == "done", handle.error
    assert handle.result is not None and handle.result.report.ok
    assert handle.progress is not None and handle.progress.fraction == 1.0
    assert {s.id: s.state for s in service.states()}["z-image-turbo"] == "present"
    assert not service.cancel("z-image-turbo")
    with pytest.raises(UserError, match="nothing to download"):
        service.start("tiny-z-image")


def test_remove_deletes_what_the_app_downloaded(fake_hub, mirror_settings, hub_cache) -> None:
    result = download_model(mirror_settings, "z-image-turbo", endpoint=fake_hub.url, cache_dir=hub_cache)
    removal = plan_removal(mirror_settings, "z-image-turbo", hub_cache)
    assert removal.paths == (repo_storage(TEST_REPO, hub_cache),)
    assert removal.size_bytes == result.total_bytes
    remove_model(removal)
    assert model_state(get_model("z-image-turbo"), mirror_settings, hub_cache).state == "missing"
    mirror_settings.models["z-image-turbo"].path = hub_cache
    with pytest.raises(UserError, match="did not download"):
        plan_removal(mirror_settings, "z-image-turbo", hub_cache)
    shutil.rmtree(hub_cache, ignore_errors=True)
