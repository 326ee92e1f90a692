"""Finding models in the Hugging Face cache without paying for the Hub client when nothing is there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import PYTHON, cli_env

HEAVY_HUB = ("huggingface_hub._snapshot_download", "huggingface_hub.hf_api")


def models_list_in_process(hub_cache: Path, config: Path) -> tuple[dict, list[str]]:
    probe = (
        "import contextlib, io, json, sys\n"
        "from imagestudio.cli import app\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        app(['models', 'list', '--json', '--config', {str(config)!r}])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"heavy = [m for m in {HEAVY_HUB!r} if m in sys.modules]\n"
        "print(json.dumps({'list': json.loads(out.getvalue()), 'heavy': heavy}))\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", probe],
        capture_output=True,
        text=True,
        env=cli_env(HF_HUB_CACHE=str(hub_cache)),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    return {row["id"]: row for row in payload["list"]["models"]}, payload["heavy"]


def test_empty_cache_never_imports_the_hub_client(config_file: Path, tmp_path: Path) -> None:
    rows, heavy = models_list_in_process(tmp_path / "hub", config_file)
    assert rows["z-image-turbo"]["state"] == "missing"
    assert heavy == []


def test_cached_snapshot_is_still_found(config_file: Path, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    repo = hub / "models--Tongyi-MAI--Z-Image-Turbo"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text("{}", encoding="utf-8")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name, encoding="utf-8")
    rows, _ = models_list_in_process(hub, config_file)
    # Found where it is; a bare model_index.json with no component folders verifies as incomplete.
    assert rows["z-image-turbo"]["state"] == "partial"
    assert rows["z-image-turbo"]["path"] == str(snapshot)
    assert rows["qwen-image-edit-2511"]["state"] == "missing"
