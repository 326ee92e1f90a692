"""Models on this machine and their downloads: ``GET /api/models`` and ``/api/models/{id}/download``.

Thin routes over the shared :class:`~imagestudio.models.background.BackgroundDownloads`: a download runs
on its own thread (never the GPU worker's), at most one per model; clients poll its progress.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, Field

from imagestudio.api.common import get_services
from imagestudio.api.errors import ApiError, error_responses
from imagestudio.registry import MODELS, get_model

router = APIRouter(tags=["models"])

ModelId = Annotated[str, Path(description="A model id from GET /api/models.", max_length=100)]


class VariantStateInfo(BaseModel):
    variant: str = Field(description="The name --weights / models.<id>.weights / the download body take.")
    format: str = Field(description="bf16, gguf or sdnq.")
    state: str = Field(description="present, missing, or tiny (built on first use).")
    path: str | None
    download_bytes: int = Field(description="About how many bytes a download of this variant fetches.")
    repo: str | None
    file: str | None = Field(description="GGUF variants: the file in repo.")
    quality: str = Field(description="One word against bf16 (from quality_source).")
    quality_source: str


class ModelStateInfo(BaseModel):
    id: str
    title: str
    task: str
    state: str = Field(description="present, partial, missing or tiny (built on first use).")
    path: str | None
    source: str | None
    size_bytes: int = Field(description="Bytes on disk now.")
    download_bytes: int = Field(description="About how many bytes a download fetches.")
    repo: str | None
    problem: str | None = Field(description="Why a partial model is incomplete.")
    variants: list[VariantStateInfo] = Field(
        default_factory=list, description="The model's weight variants: bf16, GGUF and SDNQ files."
    )


class DownloadProgressInfo(BaseModel):
    """Where a download is (models.progress.DownloadProgress on the wire)."""

    model: str
    done_bytes: int
    total_bytes: int
    rate: float = Field(description="Bytes per second over the last few seconds (0 before any).")
    eta: float | None = Field(description="Seconds left at that rate; null while unknown.")
    current_file: str | None
    files_done: int
    files_total: int


class DownloadResultInfo(BaseModel):
    """What a finished download fetched and whether the folder checked whole."""

    model: str
    path: str
    repo: str | None
    commit: str | None
    fetched_bytes: int
    total_bytes: int
    files: int
    elapsed_s: float
    verified: bool
    note: str | None = Field(description="Why nothing had to be fetched, when nothing was.")


class DownloadInfo(BaseModel):
    model: str
    weights: str = Field("bf16", description="The weight variant being fetched.")
    status: Literal["running", "done", "failed", "cancelled"]
    progress: DownloadProgressInfo | None = Field(description="Bytes done/total, rate, ETA, current file.")
    result: DownloadResultInfo | None
    error: str | None
    error_code: str | None = Field(None, description="A stable name for the kind of error, if it has one.")
    error_details: dict[str, Any] = Field(default_factory=dict, description="The error's values by name.")


class ModelsInfo(BaseModel):
    models: list[ModelStateInfo]
    downloads: list[DownloadInfo]


class DownloadBody(BaseModel):
    model_config = {"extra": "forbid"}

    revision: str | None = Field(None, max_length=200, description="Hub branch, tag or commit.")
    weights: str = Field(
        "bf16",
        max_length=50,
        description="Weight variant to fetch (bf16, gguf-q4_k_m, sdnq-uint4 …; see variants in GET "
        "/api/models): only the files it needs.",
    )


def _known(model_id: str) -> str:
    if model_id not in MODELS:
        raise ApiError(404, f"no model {model_id!r}; valid: {', '.join(MODELS)}", param="model_id")
    return get_model(model_id).id


@router.get("/api/models", response_model=ModelsInfo, responses=error_responses(401))
def list_models(request: Request) -> ModelsInfo:
    """Every model with its state on disk, and the downloads this server has run or is running."""
    from imagestudio.memory.variant_sizes import variant_listing

    downloads = get_services(request).downloads
    handles = [downloads.get(model_id) for model_id in MODELS]
    return ModelsInfo(
        models=[
            ModelStateInfo(
                **state.as_json(),
                variants=[
                    VariantStateInfo(**row)
                    for row in variant_listing(get_model(state.id), downloads.settings)
                ],
            )
            for state in downloads.states()
        ],
        downloads=[DownloadInfo(**handle.as_json()) for handle in handles if handle is not None],
    )


@router.post(
    "/api/models/{model_id}/download",
    response_model=DownloadInfo,
    status_code=202,
    responses=error_responses(400, 401, 404),
)
def start_download(
    model_id: ModelId, request: Request, body: Annotated[DownloadBody | None, Body()] = None
) -> DownloadInfo:
    """Start (or join) the model's download; poll ``GET /api/models/{id}/download`` for progress.

    Disk space is checked before the first byte; an interrupted download resumes where it stopped.
    """
    handle = get_services(request).downloads.start(
        _known(model_id),
        revision=body.revision if body else None,
        weights=body.weights if body else "bf16",
    )
    return DownloadInfo(**handle.as_json())


@router.get(
    "/api/models/{model_id}/download", response_model=DownloadInfo, responses=error_responses(400, 401, 404)
)
def download_status(model_id: ModelId, request: Request) -> DownloadInfo:
    """The model's current or last download in this server process."""
    handle = get_services(request).downloads.get(_known(model_id))
    if handle is None:
        raise ApiError(404, f"no download of {model_id} in this server", param="model_id")
    return DownloadInfo(**handle.as_json())


@router.delete(
    "/api/models/{model_id}/download", response_model=DownloadInfo, responses=error_responses(400, 401, 404)
)
def cancel_download(model_id: ModelId, request: Request) -> DownloadInfo:
    """Stop the running download; what was fetched is kept, and the next download resumes from it."""
    downloads = get_services(request).downloads
    model_id = _known(model_id)
    if not downloads.cancel(model_id):
        raise ApiError(404, f"no running download of {model_id}", param="model_id")
    handle = downloads.get(model_id)
    assert handle is not None
    handle.wait(10)
    return DownloadInfo(**handle.as_json())
