"""``imagestudio models …`` as a user runs it: a fresh process, the hub reached through ``HF_ENDPOINT``.

The fake hub (``fakehub.py``) serves the tiny Z-Image pipeline as a repository; the config points
``z-image-turbo`` at it with ``models.z-image-turbo.repo`` (what a user with a mirror does). The real
huggingface_hub client in the CLI process talks real HTTP to it, with its cache in ``HF_HUB_CACHE``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import PYTHON, cli_env
from tests.helpers import run_cli, wait_until
from tests.models.conftest import BIG_FILE, TEST_REPO, hed_checkpoint
from tests.models.fakehub import FakeHub

STALL_AT = 300_000


@pytest.fixture
def mirror_config(app_home: Path) -> Path:
    path = app_home / "config.yaml"
    path.write_text(
        f"models:\n  z-image-turbo:\n    repo: {TEST_REPO}\n"
        f"storage:\n  models_dir: {app_home / 'models'}\n  outputs_dir: {app_home / 'outputs'}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def hub_env(fake_hub: FakeHub, tmp_path: Path) -> dict[str, str]:
    return {"HF_ENDPOINT": fake_hub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": "0"}


def _wait_for_part(cache: Path, size: int, process: subprocess.Popen[str]) -> Path:
    """The transfer file once it holds ``size`` bytes (the stalled hub sends no more)."""

    def stalled_part() -> Path | None:
        assert process.poll() is None, process.communicate()
        return next((part for part in cache.rglob("*.incomplete") if part.stat().st_size == size), None)

    return wait_until(stalled_part, 120, "the download to reach the stalled file")


def download_argv(config: Path) -> list[str]:
    """``imagestudio models download z-image-turbo`` with ``config``, as a process to start."""
    return [PYTHON, "-m", "imagestudio", "models", "download", "z-image-turbo", "--config", str(config)]


@pytest.mark.slow
def test_download_killed_midway_resumes_and_generate_loads_it(
    fake_hub: FakeHub, hub_env: dict[str, str], mirror_config: Path, tmp_path: Path
) -> None:
    cache = Path(hub_env["HF_HUB_CACHE"])
    fake_hub.stall(TEST_REPO, BIG_FILE, STALL_AT)
    argv = download_argv(mirror_config)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(**hub_env)
    )
    try:
        part = _wait_for_part(cache, STALL_AT, process)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
    # Progress was shown: the plan (sizes, destination), then bytes, rate and ETA per file.
    assert f"z-image-turbo: {TEST_REPO}@" in stderr and "to fetch into" in stderr
    assert "ETA" in stderr and "B/s" in stderr and BIG_FILE in stderr

    listed = run_cli("models", "list", "--json", config=mirror_config, **hub_env)
    row = {r["id"]: r for r in json.loads(listed.stdout)["models"]}["z-image-turbo"]
    assert row["state"] == "partial", row
    assert row["size_bytes"] >= STALL_AT
    # The loader (here behind `models path`, which generate also goes through) refuses it in one line.
    refused = run_cli("models", "path", "z-image-turbo", config=mirror_config, **hub_env)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert "only partly downloaded" in line and "imagestudio models download z-image-turbo" in line

    fake_hub.release.set()  # the killed client's connection may go now
    done = run_cli("models", "download", "z-image-turbo", config=mirror_config, **hub_env)
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder.parent.parent == cache / "models--imagestudio-test--tiny-z-image"
    assert not part.exists()
    # The resumed transfer asked for the rest only: the bytes fetched before the kill were kept.
    size = len(fake_hub.repos[TEST_REPO].files[BIG_FILE])
    first, resumed = fake_hub.gets(BIG_FILE)
    assert first.bytes_sent == STALL_AT
    assert (resumed.range, resumed.status, resumed.bytes_sent) == (f"bytes={STALL_AT}-", 206, size - STALL_AT)

    verified = run_cli("models", "verify", "z-image-turbo", config=mirror_config, **hub_env)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("z-image-turbo: OK")
    out = tmp_path / "out"
    made = run_cli(
        "generate", "--model", "z-image-turbo", "a fox", "--width", "256", "--height", "256", "--steps", "2",
        "--seed", "5", "--out", str(out), config=mirror_config, **hub_env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with Image.open(made.stdout.strip()) as image:
        assert image.size == (256, 256)

    # Removing asks first (and refuses without a terminal unless --yes), then frees the cache.
    kept = run_cli("models", "remove", "z-image-turbo", config=mirror_config, **hub_env)
    assert kept.returncode == 2 and "--yes" in kept.stderr
    assert folder.exists()
    removed = run_cli("models", "remove", "z-image-turbo", "--yes", config=mirror_config, **hub_env)
    assert removed.returncode == 0, removed.stderr
    assert not (cache / "models--imagestudio-test--tiny-z-image").exists()


def test_disk_space_refusal(fake_hub: FakeHub, hub_env: dict[str, str], mirror_config: Path) -> None:
    config = mirror_config.with_name("tight.yaml")
    config.write_text(mirror_config.read_text() + "downloads:\n  min_free_gb: 100000\n")
    done = run_cli("models", "download", "z-image-turbo", config=config, **hub_env)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: not enough disk space for z-image-turbo: needs 2.1 MB, ")
    assert "100.0 TB must stay free (downloads.min_free_gb)" in line
    assert not Path(hub_env["HF_HUB_CACHE"]).exists()
    assert {s.path for s in fake_hub.gets()} == {"model_index.json"}


def test_offline_and_unreachable_hub_are_one_line(
    fake_hub: FakeHub, hub_env: dict[str, str], mirror_config: Path
) -> None:
    offline = run_cli(
        "models", "download", "z-image-turbo", config=mirror_config, **{**hub_env, "HF_HUB_OFFLINE": "1"}
    )
    assert offline.returncode == 2
    [line] = offline.stderr.strip().splitlines()
    assert "not downloaded" in line and "about 32.9 GB" in line and "HF_HUB_OFFLINE=1" in line
    assert "imagestudio models download z-image-turbo" in line
    assert not fake_hub.api_calls

    with socket.socket() as sock:  # nothing listens here: a machine whose hub is out of reach
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = run_cli(
        "models", "download", "z-image-turbo", config=mirror_config, **{**hub_env, "HF_ENDPOINT": closed}
    )
    assert unreachable.returncode == 2
    [line] = unreachable.stderr.strip().splitlines()
    assert "cannot be reached" in line and "about 32.9 GB" in line


@pytest.mark.slow
def test_a_path_folder_is_used_without_network(
    fake_hub: FakeHub, hub_env: dict[str, str], app_home: Path, tiny_copy, tmp_path: Path
) -> None:
    """``models.<id>.path`` loads with the hub reachable but never asked (it logs every request)."""
    folder = tiny_copy("tiny-z-image")
    config = app_home / "path.yaml"
    config.write_text(
        f"models:\n  z-image-turbo:\n    path: {folder}\n"
        f"storage:\n  models_dir: {app_home / 'models'}\n  outputs_dir: {app_home / 'outputs'}\n"
    )
    listed = run_cli("models", "list", "--json", config=config, **hub_env)
    row = {r["id"]: r for r in json.loads(listed.stdout)["models"]}["z-image-turbo"]
    assert (row["state"], row["source"], row["path"]) == ("present", "config", str(folder))
    assert run_cli("models", "verify", "z-image-turbo", config=config, **hub_env).returncode == 0
    made = run_cli(
        "generate", "--model", "z-image-turbo", "кот", "-W", "256", "-H", "256", "--steps", "1",
        "--out", str(tmp_path / "out"), config=config, **hub_env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert Path(made.stdout.strip()).is_file()
    refused = run_cli("models", "download", "z-image-turbo", config=config, **hub_env)
    assert refused.returncode == 2 and "models.z-image-turbo.path is set" in refused.stderr
    assert not fake_hub.log and not fake_hub.api_calls
    assert not (tmp_path / "hf-cache").exists()


def test_hf_home_is_where_the_cache_goes(fake_hub: FakeHub, mirror_config: Path, tmp_path: Path) -> None:
    home = tmp_path / "hf-home"
    env = cli_env(HF_ENDPOINT=fake_hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(home))
    env.pop("HF_HUB_CACHE", None)
    argv = download_argv(mirror_config)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(home / "hub" / "models--imagestudio-test--tiny-z-image")
    argv = [PYTHON, "-m", "imagestudio", "models", "list", "--json", "--config", str(mirror_config)]
    listed = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    row = {r["id"]: r for r in json.loads(listed.stdout)["models"]}["z-image-turbo"]
    assert (row["state"], row["source"], row["path"]) == ("present", "hub_cache", done.stdout.strip())


@pytest.mark.slow
def test_cli_downloads_verifies_and_removes_a_weight_variant(
    fake_hub: FakeHub, mirror_config: Path, hub_env: dict[str, str], tmp_path: Path
) -> None:
    from imagestudio.registry import get_model
    from tests.models.test_variant_download import gguf_bytes

    q4 = get_model("z-image-turbo").variant("gguf-q4_k_m")
    assert q4.repo_id and q4.filename
    fake_hub.add_repo(q4.repo_id, files={q4.filename: gguf_bytes(tmp_path)})
    done = run_cli(
        "models", "download", "z-image-turbo", "--weights", "gguf-q4_k_m", config=mirror_config, **hub_env
    )
    assert done.returncode == 0, done.stderr
    # The size of each part is said before it is fetched: the base without its transformer, then the file.
    assert f"{TEST_REPO}@" in done.stderr and f"{q4.repo_id}@" in done.stderr
    assert Path(done.stdout.strip(), q4.filename).is_file()
    fetched = {(s.repo, s.path) for s in fake_hub.gets()}
    assert not any(p.startswith("transformer/") and p.endswith(".safetensors") for _, p in fetched)

    listed = json.loads(run_cli("models", "list", "--json", config=mirror_config, **hub_env).stdout)
    z = next(m for m in listed["models"] if m["id"] == "z-image-turbo")
    assert {v["variant"]: v["state"] for v in z["variants"]}["gguf-q4_k_m"] == "present"

    verified = run_cli(
        "models", "verify", "z-image-turbo", "--weights", "gguf-q4_k_m", config=mirror_config, **hub_env
    )
    assert verified.returncode == 0 and "OK" in verified.stdout, verified.stderr
    removed = run_cli(
        "models",
        "remove",
        "z-image-turbo",
        "--weights",
        "gguf-q4_k_m",
        "--yes",
        config=mirror_config,
        **hub_env,
    )
    assert removed.returncode == 0 and q4.repo_id.replace("/", "--") in removed.stdout, removed.stderr
    missing = run_cli(
        "models", "verify", "z-image-turbo", "--weights", "gguf-q4_k_m", config=mirror_config, **hub_env
    )
    assert (
        missing.returncode == 2
        and missing.stderr.count("\n") == 1
        and "--weights gguf-q4_k_m" in missing.stderr
    )


def test_hed_downloads_as_safetensors_and_a_hostile_pickle_is_one_line(
    app_home: Path, tmp_path: Path
) -> None:
    import builtins

    class Hostile:
        def __reduce__(self):
            return (builtins.open, (str(tmp_path / "created-by-the-pickle"), "w"))

    config = app_home / "config.yaml"
    config.write_text(f"storage:\n  models_dir: {app_home / 'models'}\n", encoding="utf-8")
    folder = app_home / "models" / "detectors" / "controlnet-hed"
    for served, ok in ((hed_checkpoint(tmp_path, norm=Hostile()), False), (hed_checkpoint(tmp_path), True)):
        hub = FakeHub()
        hub.add_repo("lllyasviel/Annotators", files={"ControlNetHED.pth": served})
        hub.start()
        try:
            env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_OFFLINE": "0"}
            done = run_cli("models", "download", "controlnet-hed", config=config, **env)
        finally:
            hub.close()
        if ok:
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == str(folder)
            assert sorted(p.name for p in folder.iterdir()) == ["ControlNetHED.safetensors"]
        else:
            assert done.returncode == 1
            # Progress lines while the file comes, then the refusal: one line, no traceback.
            line = done.stderr.strip().splitlines()[-1]
            assert "Traceback" not in done.stderr
            assert line.startswith(
                "error: ControlNetHED.pth is not the HED annotator's checkpoint: it asks for"
            )
            assert not (tmp_path / "created-by-the-pickle").exists()
            assert not folder.exists() or not any(folder.iterdir())
