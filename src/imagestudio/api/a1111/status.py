"""The AUTOMATIC1111 API's listings, progress and control: what A1111 clients ask besides generating.

``/sdapi/v1/sd-models`` and friends describe this server in A1111's terms (two flow-matching models,
one sampler, no upscalers or VAEs to choose); ``progress`` reports the running job with a live
preview; ``interrupt`` stops it. Generation and the selected checkpoint are in :mod:`.generation`.
"""

from __future__ import annotations

import base64
import io
import time
from typing import TYPE_CHECKING, Any

from fastapi import Request

from imagestudio.api.a1111.shape import SAMPLER, a1111_responses, a1111_router
from imagestudio.api.a1111.state import cached_model_hash, sdapi_state
from imagestudio.api.common import get_services
from imagestudio.errors import UserError
from imagestudio.registry import MODELS

if TYPE_CHECKING:
    from PIL import Image

router = a1111_router()


@router.get("/sd-models", summary="The text-to-image models on this machine, as A1111 checkpoints")
def sd_models(request: Request) -> list[dict[str, Any]]:
    from imagestudio.models.locate import find_model_dir

    settings = get_services(request).settings
    listed = []
    for spec in MODELS.values():
        # Clients offer every checkpoint for txt2img (Open WebUI, SillyTavern): an edit model there only
        # fails. Edit models stay selectable by id for img2img.
        if spec.is_edit or (not spec.tiny and find_model_dir(spec, settings, build_tiny=False) is None):
            continue
        digest = cached_model_hash(request, spec)
        listed.append(
            {
                "title": spec.id,
                "model_name": spec.id,
                "hash": digest,
                "sha256": None,
                "filename": spec.repo_id or spec.id,
                "config": None,
            }
        )
    return listed


@router.get("/samplers", summary="The one sampler these models use")
def samplers() -> list[dict[str, Any]]:
    return [{"name": SAMPLER, "aliases": ["euler", "flow_match_euler"], "options": {}}]


@router.get("/schedulers", summary="The models' own schedule")
def schedulers() -> list[dict[str, Any]]:
    return [
        {
            "name": "automatic",
            "label": "Automatic",
            "aliases": None,
            "default_rho": -1,
            "need_inner_model": False,
        }
    ]


@router.get("/upscalers", summary="Only A1111's 'None': there are no upscalers here")
def upscalers() -> list[dict[str, Any]]:
    return [{"name": "None", "model_name": None, "model_path": None, "model_url": None, "scale": 4}]


@router.get("/latent-upscale-modes", summary="None here")
def latent_upscale_modes() -> list[dict[str, Any]]:
    return []


@router.get("/sd-vae", summary="None to choose: each model brings its VAE")
def sd_vae() -> list[dict[str, Any]]:
    return []


@router.get("/sd-modules", summary="None to choose (Forge's name for sd-vae)")
def sd_modules() -> list[dict[str, Any]]:
    return []


@router.get("/loras", summary="The LoRAs prompts can name as <lora:NAME:scale> (storage.loras_dir)")
def loras(request: Request) -> list[dict[str, Any]]:
    from imagestudio.api.prompt_loras import lora_listing

    return lora_listing(get_services(request).settings.storage.loras_dir)


@router.get("/prompt-styles", summary="None here")
def prompt_styles() -> list[dict[str, Any]]:
    return []


@router.get("/embeddings", summary="None here")
def embeddings() -> dict[str, Any]:
    return {"loaded": {}, "skipped": {}}


@router.post("/refresh-checkpoints", summary="Nothing to do: models are found on every call")
def refresh_checkpoints() -> None:
    return None


# ----------------------------------------------------------------------------- progress and control


@router.get(
    "/progress",
    summary="The running job: fraction, ETA, and a live preview image",
    responses=a1111_responses(400),
)
def progress(request: Request, skip_current_image: bool = False) -> dict[str, Any]:
    services = get_services(request)
    jobs = services.queue.jobs()
    running = next((job for job in jobs if job.state.value == "running"), None)
    waiting = sum(1 for job in jobs if job.state.value == "queued")
    state: dict[str, Any] = {
        "skipped": False,
        "interrupted": False,
        "job": "",
        "job_count": waiting + (1 if running is not None else 0),
        "job_timestamp": "0",
        "job_no": 0,
        "sampling_step": 0,
        "sampling_steps": 0,
    }
    if running is None:
        return {"progress": 0.0, "eta_relative": 0.0, "state": state, "current_image": None, "textinfo": None}
    step = running.progress
    state["job"] = running.id
    state["job_timestamp"] = time.strftime("%Y%m%d%H%M%S", time.localtime(running.created_at))
    current_image = None
    if step is not None:
        state.update(job_no=step.image - 1, sampling_step=step.step, sampling_steps=step.steps)
        if not skip_current_image:
            current_image = _png_base64(sdapi_state(request).preview(running.id))
    return {
        "progress": round(step.fraction, 4) if step is not None else 0.0,
        "eta_relative": round(step.eta_s, 3) if step is not None and step.eta_s is not None else 0.0,
        "state": state,
        "current_image": current_image,
        "textinfo": None
        if step is None
        else f"image {step.image}/{step.images}, step {step.step}/{step.steps}",
    }


def _png_base64(image: Image.Image | None) -> str | None:
    if image is None:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@router.post("/interrupt", summary="Stop the running job (after its current step)")
def interrupt(request: Request) -> dict[str, Any]:
    services = get_services(request)
    for job in services.queue.jobs():
        if job.state.value == "running":
            services.queue.cancel(job.id)
    return {}


@router.post("/skip", summary="Same as interrupt here: a job's images are not skipped one by one")
def skip(request: Request) -> dict[str, Any]:
    return interrupt(request)


@router.get("/memory", summary="RAM and accelerator memory, in A1111's shape")
def memory(request: Request) -> dict[str, Any]:
    import psutil

    ram = psutil.virtual_memory()
    result: dict[str, Any] = {
        "ram": {"free": ram.available, "used": ram.total - ram.available, "total": ram.total},
        "cuda": {"error": "no CUDA device in use"},
    }
    try:
        device = get_services(request).studio.manager.device
    except UserError as exc:
        result["cuda"] = {"error": exc.message}
        return result
    if device.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()
        result["cuda"] = {
            "system": {"free": free, "used": total - free, "total": total},
            "active": {
                "current": stats.get("active_bytes.all.current", 0),
                "peak": stats.get("active_bytes.all.peak", 0),
            },
            "allocated": {
                "current": stats.get("allocated_bytes.all.current", 0),
                "peak": stats.get("allocated_bytes.all.peak", 0),
            },
            "reserved": {
                "current": stats.get("reserved_bytes.all.current", 0),
                "peak": stats.get("reserved_bytes.all.peak", 0),
            },
            "inactive": {
                "current": stats.get("inactive_split_bytes.all.current", 0),
                "peak": stats.get("inactive_split_bytes.all.peak", 0),
            },
            "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
        }
    return result
