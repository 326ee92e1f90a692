"""The ControlNet and the hires pass's upscaler in the memory plan and in the doctor's report."""

from __future__ import annotations

import io
from dataclasses import replace

from PIL import Image

from imagestudio.config import Settings
from imagestudio.doctor import run_doctor
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.job_requests import ControlInput, GenerateRequest
from imagestudio.memory.extras import controlnet_bytes, detector_bytes, upscaler_bytes
from imagestudio.memory.plan import Candidate, Environment, evaluate
from imagestudio.memory.planner import MemoryPlanner, workload_for
from imagestudio.registry import CONTROLNETS, DETECTORS, MODELS, UPSCALERS
from imagestudio.storage.inputs import InputLimits, read_input_image

GIB = 1024**3
TURBO = MODELS["z-image-turbo"]
UNION = CONTROLNETS["z-image-turbo-controlnet-union-2.1"]


def card(vram_gb: float, ram_gb: float = 64) -> Hardware:
    cpu = Hardware("cpu", "test CPU", 0, 0, True, None, int(ram_gb * GIB), int(ram_gb * GIB), None)
    return simulate_hardware(cpu, vram_gb, ram_gb)


def planner(vram_gb: float) -> MemoryPlanner:
    hardware = card(vram_gb)
    return MemoryPlanner(Settings(), hardware, hardware.accelerator, Environment())


def control_input(kind: str = "canny") -> ControlInput:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="PNG")
    image = read_input_image(buffer.getvalue(), InputLimits(10_000_000, 10_000_000), name="map.png")
    return ControlInput.build(type=kind, image=image)


def full_bf16(workload, hardware: Hardware):
    sizes = planner(24).sizes(TURBO)
    return evaluate(
        Candidate("full", "bf16", False, False),
        model_id=TURBO.id,
        family=TURBO.family,
        sizes=sizes,
        hardware=hardware,
        workload=workload,
        compute_dtype="bfloat16",
        reserve_gb=1.0,
    )


def test_the_controlnet_sits_beside_the_transformer_while_it_denoises() -> None:
    base = workload_for(TURBO, None, Settings())
    extra = controlnet_bytes(UNION, 2)
    assert extra == UNION.download_bytes  # the release is bf16: loaded at bf16, its file's size
    without = full_bf16(base, card(48))
    with_net = full_bf16(replace(base, controlnet_bytes=extra), card(48))
    assert abs(with_net.phases_gb["denoise"] - without.phases_gb["denoise"] - extra / GIB) < 0.011
    for phase in ("text_encode", "vae_encode", "vae_decode"):
        assert with_net.phases_gb[phase] == without.phases_gb[phase]
    assert with_net.peak_ram_bytes - without.peak_ram_bytes == extra  # read into RAM while loading


def test_a_controlled_request_is_planned_with_its_controlnet() -> None:
    settings = Settings()
    plain = GenerateRequest(prompt="a tower", model=TURBO.id).resolved(settings)
    steered = plain.model_copy(update={"control": control_input()}).resolved(settings)
    assert workload_for(TURBO, plain, settings).controlnet_bytes == 0
    assert workload_for(TURBO, steered, settings).controlnet_bytes == UNION.download_bytes
    # On a 24 GB card the plain job runs fully on the card in bf16; the ControlNet's 6 GB do not fit beside
    # it, so the controlled job's plan gives something up, and still fits.
    on_24 = planner(24)
    plain_plan = on_24.plan_for_request(TURBO, plain)
    steered_plan = on_24.plan_for_request(TURBO, steered, resident=plain_plan)
    assert steered_plan.placement != plain_plan.placement
    assert steered_plan.fits and steered_plan.predicted_peak_vram_gb <= steered_plan.vram_budget_gb
    assert "ControlNet" in steered_plan.workload.describe()
    # A depth map adds its detector, run before the prompt is encoded (canny needs none).
    assert workload_for(TURBO, steered, settings).detector_bytes == 0
    depth = plain.model_copy(update={"control": control_input("depth")}).resolved(settings)
    detector = DETECTORS["depth-anything-v2-small"]
    assert workload_for(TURBO, depth, settings).detector_bytes == detector_bytes(detector)
    depth_plan = on_24.plan(TURBO, workload_for(TURBO, depth, settings))
    assert depth_plan.phases_gb["detect"] >= depth_plan.phases_gb["text_encode"]
    # Pose runs its person detector, then ViTPose, one at a time: the larger of the two is planned.
    pose = plain.model_copy(update={"control": control_input("pose")}).resolved(settings)
    vitpose, rtdetr = DETECTORS["vitpose-base-simple"], DETECTORS["rtdetr-r50vd-coco-o365"]
    assert workload_for(TURBO, pose, settings).detector_bytes == detector_bytes(vitpose)
    assert detector_bytes(vitpose) == detector_bytes(replace(vitpose, companions=())) > detector_bytes(rtdetr)
    pose_plan = on_24.plan(TURBO, workload_for(TURBO, pose, settings))
    assert pose_plan.phases_gb["detect"] > depth_plan.phases_gb["detect"]
    # HED's weights are small and its maps of the whole picture are not: its own figure is planned.
    hed = plain.model_copy(update={"control": control_input("hed")}).resolved(settings)
    soft = DETECTORS["controlnet-hed"]
    assert soft.run_bytes is not None and soft.run_bytes > soft.download_bytes * 3
    assert workload_for(TURBO, hed, settings).detector_bytes == soft.run_bytes
    mlsd = plain.model_copy(update={"control": control_input("mlsd")}).resolved(settings)
    assert workload_for(TURBO, mlsd, settings).detector_bytes == 0  # OpenCV, no model


def test_a_hires_request_is_planned_at_its_enlarged_size_with_its_upscaler() -> None:
    settings = Settings()
    request = GenerateRequest(prompt="a harbour", model=TURBO.id, width=1024, height=768, hires_scale=2.0)
    workload = workload_for(TURBO, request.resolved(settings), settings)
    upscaler = UPSCALERS[settings.upscale.default_upscaler]
    assert (workload.width, workload.height) == (2048, 1536)  # the img2img pass, bigger than the first
    assert workload.input_images == 1 and workload.input_area == 2048 * 1536
    assert workload.upscaler_bytes == upscaler_bytes(upscaler, 2) > upscaler.download_bytes // 2
    plan = planner(24).plan(TURBO, workload)
    assert plan.phases_gb["upscale"] > 0
    # Past the model's 2048² limit the img2img runs on tiles of its own size (1024²), smaller than this
    # first pass: the first pass is the bigger run, planned with the upscaler beside it.
    big = GenerateRequest(prompt="a harbour", model=TURBO.id, width=1536, height=1536, hires_scale=2.0)
    tiled = workload_for(TURBO, big.resolved(settings), settings)
    assert (tiled.width, tiled.height, tiled.input_images) == (1536, 1536, 0)
    assert tiled.upscaler_bytes == workload.upscaler_bytes


def test_the_doctor_explains_what_control_and_hires_add(settings: Settings) -> None:
    report = run_doctor(settings, ["z-image-turbo"], 24, 64)
    [entry] = report.models
    extras = {check.code: check for check in entry.extras}
    assert set(extras) == {"plan.controlnet", "plan.hires"}
    control = extras["plan.controlnet"]
    assert control.details["controlnet"] == UNION.id
    assert control.details["extra"] == f"{UNION.download_bytes / GIB:.1f}"
    assert UNION.id in control.line() and "adds 6.2 GB" in control.line()
    hires = extras["plan.hires"]
    assert (hires.details["width"], hires.details["height"]) == ("2048", "2048")
    assert float(hires.details["peak"]) <= float(hires.details["budget"])
    assert [c["code"] for c in entry.as_dict()["extras"]] == ["plan.controlnet", "plan.hires"]
    # The edit model takes neither: no extra lines.
    [edit] = run_doctor(settings, ["qwen-image-edit-2511"], 24, 64).models
    assert edit.extras == []
