"""The runner's command line, as a user runs it: ``python -m benchmarks`` and ``imagestudio bench``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from benchmarks.cli import parse_cases
from benchmarks.context import subprocess_env

from tests.conftest import PYTHON, REPO_ROOT


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, *argv],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        timeout=600,
        check=False,
    )


def test_one_benchmark_to_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = run("-m", "benchmarks", "--only", "cli", "--repeat", "1", "--warmup", "0", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "imagestudio --help" in done.stdout
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["options"]["benchmarks"] == ["cli"]
    assert {"cpu", "logical_cores", "ram_bytes", "torch", "diffusers", "transformers"} <= set(
        document["machine"]
    )
    assert [r["case"] for r in document["results"]] == ["imagestudio --help", "imagestudio models list"]
    assert all(r["status"] == "measured" and len(r["samples"]["app"]) == 1 for r in document["results"])


@pytest.mark.slow
def test_reduced_real_size_run(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = run(
        "-m", "benchmarks", "--real-size", "--reduced", "--models", "z-image-turbo", "--profiles", "full",
        "--repeat", "1", "--device", "cpu", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["options"]["real_size"] and document["options"]["reduced"]
    [row] = document["results"]
    assert row["case"] == "Z-Image-Turbo · full (reduced)"
    # A reduced run tests the harness; it must never land in the document's GPU table.
    done = run("-m", "benchmarks.render", str(out), "--doc", str(tmp_path / "doc.md"))
    assert done.returncode == 2 and "not GPU figures" in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--real-size", "--device", "cpu"), "needs a CUDA GPU"),
        (("--reduced",), "--reduced goes with --real-size"),
        (("--only", "nope"), "unknown benchmark 'nope'"),
        (("--real-size", "--reduced", "--profiles", "turbo"), "unknown profile turbo"),
    ],
)
def test_bad_options_exit_2(argv: tuple[str, ...], message: str) -> None:
    done = run("-m", "benchmarks", *argv)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_imagestudio_bench_passes_options_through() -> None:
    done = run("-m", "imagestudio", "bench", "--list")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == ["warm_overhead", "cold_start", "cli", "model_switch", "load_memory", "control_upscale"]


def test_parse_cases() -> None:
    assert parse_cases("64x2, 512X8") == [(64, 2), (512, 8)]
    for bad in ("64", "63x2", "64x0", "axb", ""):
        with pytest.raises(Exception, match=r"SIDExSTEPS|multiple of 16|at least 1|no cases"):
            parse_cases(bad)
