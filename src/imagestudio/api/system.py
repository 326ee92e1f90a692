"""Health, the machine's state, and the model list (OpenAI's ``/v1/models`` shape)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from imagestudio import __version__
from imagestudio.api.common import get_services
from imagestudio.api.errors import ApiError, error_responses
from imagestudio.api.schemas import (
    AcceleratorInfo,
    Health,
    LoadedModelInfo,
    MemoryInfo,
    ModelCard,
    ModelList,
    QueueInfo,
    SystemInfo,
    WorkerInfo,
)
from imagestudio.errors import UserError
from imagestudio.jobs.queue_protocol import WorkerListing
from imagestudio.registry import MODELS, ModelSpec

router = APIRouter(tags=["system"])


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The worker thread is not running"}},
    summary="Liveness (never needs the API key)",
)
def healthz(request: Request) -> JSONResponse:
    alive = get_services(request).queue.worker_alive
    body = Health(status="ok" if alive else "degraded", worker_alive=alive)
    return JSONResponse(body.model_dump(), status_code=200 if alive else 503)


@router.get("/api/system", response_model=SystemInfo, responses=error_responses(401))
def system(request: Request) -> SystemInfo:
    """Device, memory, the loaded model and how it is placed, the queue, the models present here."""
    services = get_services(request)
    try:
        manager = services.studio.manager
        device = manager.device
        resident = manager.resident
    except UserError as exc:
        device, resident = f"unavailable: {exc.message}", None
    stats = services.queue.stats()
    return SystemInfo(
        version=__version__,
        device=device,
        loaded_model=LoadedModelInfo(
            id=resident.spec.id,
            placement=resident.placement,
            dtype=resident.dtype,
            load_seconds=round(resident.load_seconds, 3),
        )
        if resident is not None
        else None,
        queue=QueueInfo(
            running=stats.running,
            queued=stats.queued,
            max_queue=stats.max_queue,
            worker_alive=stats.worker_alive,
        ),
        memory=_memory(device),
        models=_model_cards(request),
        workers=_workers(services.queue),
    )


def _workers(queue: object) -> list[WorkerInfo]:
    """The cluster's workers; the in-process queue has none to list."""
    if not isinstance(queue, WorkerListing):
        return []
    return [WorkerInfo(**{**vars(status), "models": list(status.models)}) for status in queue.workers()]


@router.get(
    "/v1/models", response_model=ModelList, responses=error_responses(401), tags=["OpenAI-compatible"]
)
def list_models(request: Request) -> ModelList:
    return ModelList(data=_model_cards(request))


@router.get(
    "/v1/models/{model_id}",
    response_model=ModelCard,
    responses=error_responses(400, 401, 404),
    tags=["OpenAI-compatible"],
)
def get_model_card(model_id: Annotated[str, Path(max_length=200)], request: Request) -> ModelCard:
    spec = MODELS.get(model_id)
    if spec is None:
        raise ApiError(
            404,
            f"the model {model_id!r} does not exist; valid: {', '.join(MODELS)}",
            code="model_not_found",
            param="model",
        )
    return _card(spec, request)


def _model_cards(request: Request) -> list[ModelCard]:
    return [_card(spec, request) for spec in MODELS.values()]


def _card(spec: ModelSpec, request: Request) -> ModelCard:
    from imagestudio.models.locate import find_model_dir

    settings = get_services(request).settings
    available = spec.tiny or find_model_dir(spec, settings, build_tiny=False) is not None
    owner = spec.repo_id.split("/")[0] if spec.repo_id else "imagestudio"
    return ModelCard(id=spec.id, owned_by=owner, title=spec.title, task=spec.task, available=available)


def _memory(device: str) -> MemoryInfo:
    import psutil

    ram = psutil.virtual_memory()
    accelerator = None
    if device.startswith("cuda"):
        import torch

        free, total = torch.cuda.mem_get_info()
        accelerator = AcceleratorInfo(
            name=torch.cuda.get_device_name(),
            total_bytes=total,
            free_bytes=free,
            allocated_bytes=torch.cuda.memory_allocated(),
            peak_allocated_bytes=torch.cuda.max_memory_allocated(),
        )
    return MemoryInfo(ram_total_bytes=ram.total, ram_available_bytes=ram.available, accelerator=accelerator)
