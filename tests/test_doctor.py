"""``imagestudio doctor``: the checks, the plans, the JSON contract, and the CLI as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagestudio.config import GenerationSettings, ModelSettings, Settings
from imagestudio.doctor import allocator_check, config_checks, run_doctor
from imagestudio.errors import ConfigError
from tests.helpers import run_cli
from tests.test_config import DOCUMENTS_CONFIG

CARDS_GB = (6, 8, 12, 16, 24, 48, 80)
REAL = ("z-image-turbo", "qwen-image-edit-2511")
PROFILE_ORDER = ("full", "model_offload", "group_offload", "sequential")


def test_json_contract_over_common_cards(settings: Settings) -> None:
    reserve = settings.device.vram_reserve_gb
    by_model: dict[str, list[dict]] = {m: [] for m in REAL}
    for gb in CARDS_GB:
        report = run_doctor(settings, None, gb, 128).as_dict()
        assert report["hardware"]["simulated"] and report["hardware"]["vram_total_gb"] == gb
        for entry in report["models"]:
            for key in ("id", "profile", "weights", "transformer_params", "predicted_peak_vram_gb"):
                assert key in entry
            assert isinstance(entry["fits"], bool) and entry["predicted_peak_ram_gb"] > 0
            if entry["fits"]:
                assert entry["predicted_peak_vram_gb"] <= gb - reserve
            by_model[entry["id"]].append(entry)
    for model_id, entries in by_model.items():
        ranks = [PROFILE_ORDER.index(e["profile"]) for e in entries]
        assert ranks == sorted(ranks, reverse=True), model_id  # bigger card, never a slower profile
        assert entries[-1]["profile"] == "full"
    assert by_model["z-image-turbo"][0]["transformer_params"] == 6_154_908_736
    assert by_model["qwen-image-edit-2511"][0]["transformer_params"] == 20_430_401_088


def test_config_against_the_official_recommendations(app_home: Path) -> None:
    settings = Settings(
        models={
            "z-image-turbo": ModelSettings(torch_dtype="float16"),
            "qwen-image-edit-2511": ModelSettings(),
        },
        generation=GenerationSettings(default_num_inference_steps=9, default_guidance_scale=3.5),
    )
    checks = {c.name: c for c in config_checks(settings)}
    assert checks["models.z-image-turbo.torch_dtype"].status == "fail"
    assert checks["models.qwen-image-edit-2511.torch_dtype"].status == "ok"
    assert checks["generation.default_guidance_scale"].status == "fail"
    steps = checks["generation.default_num_inference_steps"]
    assert steps.status == "warn" and "official is 8" in steps.message and "9 forwards" in steps.message
    defaults = {c.name: c.status for c in config_checks(Settings())}
    assert set(defaults.values()) == {"ok"}


def test_the_documents_offload_switches_are_flagged(app_home: Path) -> None:
    from imagestudio.config import DeviceSettings

    settings = Settings(device=DeviceSettings(enable_cpu_offload=True, sequential_offload=True))
    [check] = [c for c in config_checks(settings) if c.name == "device offload switches"]
    assert check.status == "warn" and "sequential" in check.message


def test_allocator_setting() -> None:
    assert allocator_check({"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}).status == "ok"
    assert allocator_check({"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:128"}).status == "warn"
    assert allocator_check({}).status == "warn"


def test_cli_plans_an_8_gb_card(config_file: Path) -> None:
    done = run_cli(
        "doctor", "--simulate-vram", "8", "--simulate-ram", "32", "--json", "--config", str(config_file)
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    z = next(m for m in report["models"] if m["id"] == "z-image-turbo")
    assert z["profile"] != "full" and z["predicted_peak_vram_gb"] < 8 and z["fits"]
    allocator = next(c for c in report["checks"] if c["check"] == "allocator")
    assert allocator["status"] == "ok"  # set by the command itself before torch was imported


def test_cli_plans_full_on_an_80_gb_card_and_prints_one_line_per_check(config_file: Path) -> None:
    done = run_cli("doctor", "--simulate-vram", "80", "--simulate-ram", "128", "--config", str(config_file))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for model_id in REAL:
        [line] = [ln for ln in lines if ln.startswith(("✅", "⚠️", "❌")) and f" {model_id} (" in ln]
        assert "full, bf16 weights" in line and line.startswith("✅")
    assert any(line.startswith("✅ device: simulated") for line in lines)
    assert any(line.strip().startswith("why:") for line in lines)


def test_cli_refuses_bad_arguments_in_one_line(config_file: Path) -> None:
    for args, expected in (
        (("--model", "sdxl"), "unknown model 'sdxl'"),
        (("--simulate-vram", "-4"), "--simulate-vram -4 must be a positive number"),
    ):
        done = run_cli("doctor", *args, "--config", str(config_file))
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_simulated_card_evaluates_the_original_documents_cuda_config(app_home: Path) -> None:
    import torch

    from imagestudio.config import load_settings

    path = app_home / "original.yaml"
    path.write_text(DOCUMENTS_CONFIG, encoding="utf-8")
    settings = load_settings(path)
    report = run_doctor(settings, vram_gb=8, ram_gb=32).as_dict()
    assert report["hardware"]["accelerator"] == "cuda" and report["hardware"]["simulated"]
    z = next(m for m in report["models"] if m["id"] == "z-image-turbo")
    assert z["profile"] == "sequential"  # the documents' switches, applied to the simulated card
    if not torch.cuda.is_available():
        # Without simulation the same config is still refused here: there is no CUDA to run on.
        with pytest.raises(ConfigError, match=r"device\.type is cuda"):
            run_doctor(settings)
