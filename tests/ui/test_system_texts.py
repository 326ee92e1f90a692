"""The System page's configuration checks read in the page's language, from the checks' own codes."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from imagestudio.config import DeviceSettings, GenerationSettings, ModelSettings, Settings
from imagestudio.doctor import MESSAGES, allocator_check, config_checks, plan_check, run_doctor
from imagestudio.ui.common import UIContext
from imagestudio.ui.system_page import check_text, plan_words
from imagestudio.ui.texts import NOT_NUMBERS, Texts, decimal, placeholders

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


class _NoBackend:
    settings = None


@pytest.fixture(scope="module")
def ctx() -> UIContext:
    return UIContext(backend=_NoBackend(), texts=Texts.load())  # type: ignore[arg-type]


def every_kind_of_check(settings: Settings) -> list:
    """Checks from real reports over a CPU, small and big simulated cards, and a config that breaks the
    official recommendations: as many different codes as this machine can produce."""
    wrong = settings.model_copy(
        update={
            "models": {
                **settings.models,
                "z-image-turbo": ModelSettings(torch_dtype="float16"),
                "qwen-image-edit-2511": ModelSettings(torch_dtype="float32"),
            },
            "generation": GenerationSettings(default_num_inference_steps=9, default_guidance_scale=3.5),
            "device": DeviceSettings(enable_cpu_offload=True),
        }
    )
    checks = [*config_checks(wrong), allocator_check({}), allocator_check({"PYTORCH_CUDA_ALLOC_CONF": "x:1"})]
    for vram, ram in ((None, None), (6, 8), (8, 32), (24, 64), (80, 256)):
        report = run_doctor(settings, None, vram, ram)
        checks += report.checks
        for entry in report.models:
            checks += [*entry.checks, plan_check(entry.plan)]
            checks.append(plan_check(replace(entry.plan, pinned=False, vae_tiling=True)))
    return checks


def test_every_check_reads_in_russian_and_english_says_what_the_cli_says(ctx, settings) -> None:
    checks = every_kind_of_check(settings)
    codes = {c.code for c in checks}
    assert len(codes) >= 15, sorted(codes)  # the cases above reach most of the messages
    for check in checks:
        row = check.as_dict()
        row["name"] = row.pop("check")
        message = check_text(ctx, row, "ru")[1]
        assert CYRILLIC.search(message), (check.code, message)
        assert "{" not in message and "}" not in message, message
        # Every number, path or model name the English line shows reaches the Russian one too (the
        # plan's own words are translated instead; decimals are written with a comma).
        for key in placeholders(MESSAGES[check.code]) - {"plan"}:
            shown = check.details[key] if key in NOT_NUMBERS else decimal(check.details[key], "ru")
            assert shown in message, (check.code, key, message)
        if not check.code.startswith("plan."):
            assert check_text(ctx, row, "en")[1] == check.message


def test_names_are_translated_but_config_keys_stay_as_written(ctx, settings) -> None:
    rows = {c.code: c.as_dict() for c in every_kind_of_check(settings)}
    files = {**rows["files.tiny"], "name": rows["files.tiny"]["check"]} if "files.tiny" in rows else None
    dtype = {**rows["dtype.float16"], "name": rows["dtype.float16"]["check"]}
    ram = {**rows["ram.size"], "name": rows["ram.size"]["check"]}
    assert check_text(ctx, dtype, "ru")[0] == "models.z-image-turbo.torch_dtype"
    assert check_text(ctx, ram, "ru")[0] == "оперативная память"
    assert check_text(ctx, ram, "en")[0] == "RAM"
    if files is not None:
        assert check_text(ctx, files, "ru")[0].startswith("файлы ")


def test_plan_words(ctx) -> None:
    plan = {"profile": "group_offload", "weights": "fp8", "pinned_on_the_fly": "yes", "vae_tiling": "yes"}
    assert (
        plan_words(ctx, plan, "ru")
        == "блоки подгружаются в видеопамять, веса fp8, закрепление на лету, VAE по плиткам"
    )
    assert plan_words(ctx, {"profile": "full", "weights": "bf16", "vae_tiling": ""}, "en") == (
        "everything on the GPU, bf16 weights"
    )
    assert plan_words(ctx, {"profile": "full", "accelerator": "cpu", "weights": "bf16"}, "ru").startswith(
        "на процессоре"
    )


def test_a_row_without_a_known_code_keeps_its_message(ctx) -> None:
    row = {"name": "something", "status": "warn", "message": "an English line", "code": "no.such"}
    assert check_text(ctx, row, "ru") == ("something", "an English line")


def test_every_message_code_has_a_russian_line(ctx) -> None:
    for code in MESSAGES:
        assert CYRILLIC.search(ctx.texts.tables["ru"][f"doctor.{code}"]), code


def test_sizes_use_the_readers_units(ctx) -> None:
    from imagestudio.ui.system_page import size_text

    assert size_text(ctx, "ru", 2_100_000) == "2,1 МБ"  # a decimal comma in Russian
    assert size_text(ctx, "en", 32_900_000_000) == "32.9 GB"
    assert size_text(ctx, "ru", 512) == "512 Б"


def test_details_that_do_not_fit_fall_back_to_the_english_line(ctx) -> None:
    row = {"name": "RAM", "status": "ok", "message": "the English line", "code": "ram.size", "details": {}}
    assert check_text(ctx, row, "ru") == ("оперативная память", "the English line")


def test_russian_system_values_are_words_with_decimal_commas(ctx) -> None:
    from imagestudio.ui.system_page import _fields_table

    table = _fields_table(
        ctx,
        {
            "profile": "full",
            "attention_backend": "native",
            "load_seconds": 1.5,
            "predicted_peak_ram_gb": 17.3,
        },
        "ru",
    )
    assert "всё в видеопамяти" in table and "встроенный" in table, table
    assert "Механизм внимания" in table and "Attention<" not in table, table
    assert "1,5" in table and "17,3" in table and "17.3" not in table, table
    # A version is not a decimal number.
    assert ctx.t("doctor.steps.default", "ru", official=8, version="0.42").endswith("0.42)")
