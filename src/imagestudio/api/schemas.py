"""Request and response bodies of the HTTP API (they are its OpenAPI schema, so keep them exact)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from imagestudio.job_requests import MAX_COUNT, MAX_PROMPT_CHARS, MAX_SEED, MAX_UPSCALE

SIZE_PATTERN = r"^(auto|[0-9]{1,5}x[0-9]{1,5})$"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What to draw.")]
NegativePrompt = Annotated[
    str | None, Field(None, max_length=MAX_PROMPT_CHARS, description="Extension: what to avoid.")
]
# Integers in JSON bodies are strict: "2" or true for n/count/steps/seed is a 400, not silently taken.
Seed = Annotated[
    StrictInt | None,
    Field(None, ge=0, le=MAX_SEED, description="Extension: seed of the first image; random if absent."),
]
Steps = Annotated[
    StrictInt | None,
    Field(
        None, ge=1, le=200, description="Extension: denoising steps; the model's official count if absent."
    ),
]
Guidance = Annotated[
    float | None,
    Field(None, ge=0.0, le=30.0, description="Extension: guidance scale (Z-Image-Turbo: exactly 0)."),
]
Variety = Annotated[
    float | None,
    Field(
        None,
        ge=0.0,
        le=1.0,
        description="Extension: seed variety, 0 (off, default) to 1: per-seed noise on the prompt's "
        "embeddings, so that seeds differ more on Z-Image-Turbo.",
    ),
]


class _Strict(BaseModel):
    # An unknown field is an error naming it, never silently ignored.
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- OpenAI images


Quality = Literal["auto", "standard", "hd", "low", "medium", "high", "xhigh", "max"]
OutputFormat = Literal["png", "jpeg", "webp"]
#: OpenAI's images fields that are accepted and recorded but change nothing here (the models have one
#: quality, no styles, no moderation step), in the order they are recorded.
RECORDED_OPENAI_FIELDS = (
    "quality",
    "style",
    "background",
    "moderation",
    "user",
    "safety_identifier",
    "input_fidelity",
    "output_format",
    "output_compression",
)


class _Tolerant(BaseModel):
    # OpenAI adds fields to its images API often; a client sending a newer one must still get an image.
    # Unknown fields are kept in ``model_extra`` so the route can log them.
    model_config = ConfigDict(extra="allow")


class ImageOptions(_Tolerant):
    """The OpenAI images fields generations and edits share (how to answer, and what is only recorded)."""

    response_format: Literal["b64_json", "url"] | None = Field(
        None,
        description="b64_json, or url (GET it with the same API key). Default: url for dall-e-* "
        "model names (as OpenAI does), else b64_json.",
    )
    output_format: OutputFormat | None = Field(
        None, description="png (default), jpeg or webp; JPEG/WebP carry the parameters in EXIF UserComment."
    )
    output_compression: StrictInt | None = Field(
        None, ge=0, le=100, description="JPEG/WebP quality 0-100 (default 90); ignored for PNG."
    )
    background: Literal["auto", "opaque", "transparent"] | None = Field(
        None, description="auto or opaque; transparent is refused (these models have no alpha)."
    )
    quality: Quality | None = Field(None, description="Accepted and recorded; steps decide quality here.")
    style: Literal["vivid", "natural"] | None = Field(None, description="Accepted and recorded; no effect.")
    moderation: Literal["auto", "low"] | None = Field(None, description="Accepted and recorded; no effect.")
    user: str | None = Field(None, max_length=256, description="Accepted and recorded; no effect.")
    safety_identifier: str | None = Field(None, max_length=256, description="Accepted and recorded.")
    input_fidelity: Literal["high", "low"] | None = Field(None, description="Accepted and recorded.")
    stream: StrictBool | None = Field(
        None, description="Answer with Server-Sent Events: partial images (live previews), then the image."
    )
    partial_images: StrictInt | None = Field(
        None, ge=0, le=3, description="With stream: at most this many partial images (fewer if it is fast)."
    )


class ImageGenerationRequest(ImageOptions):
    """``POST /v1/images/generations``: OpenAI's fields, plus seed/steps/guidance_scale/negative_prompt."""

    prompt: Prompt
    model: str | None = Field(
        None,
        description="A model id from GET /v1/models, or auto / an OpenAI name (dall-e-3, gpt-image-1 …) "
        "for server.auto_generate_model.",
    )
    n: StrictInt | None = Field(
        None, ge=1, le=MAX_COUNT, description="How many images (seeds seed, seed+1, …)."
    )
    size: str | None = Field(
        None, pattern=SIZE_PATTERN, description="WIDTHxHEIGHT, multiples of 16; 'auto' = configured default."
    )
    seed: Seed = None
    steps: Steps = None
    guidance_scale: Guidance = None
    negative_prompt: NegativePrompt = None
    variety: Variety = None


class ImageData(BaseModel):
    b64_json: str | None = Field(None, description="The image, base64-encoded (response_format b64_json).")
    url: str | None = Field(None, description="Where to GET the PNG (response_format url).")
    revised_prompt: str | None = Field(None, description="Never set: prompts are used as given.")
    id: str = Field(description="Extension: the image's id (GET /api/images/{id}).")
    seed: int = Field(description="Extension: the seed that made this image.")


class Usage(BaseModel):
    """OpenAI's usage block. Tokens are not counted here; the fields are present and zero."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: dict[str, int] = Field(
        default_factory=lambda: {"image_tokens": 0, "text_tokens": 0}
    )


class ImagesResponse(BaseModel):
    created: int = Field(description="Unix time (seconds) the images were made.")
    data: list[ImageData]
    output_format: OutputFormat = "png"
    size: str = Field(description="WIDTHxHEIGHT of the images.")
    background: Literal["opaque"] = "opaque"
    quality: Quality | None = Field(None, description="The quality asked for, echoed.")
    model: str = Field(description="Extension: the model that ran (after auto / alias resolution).")
    usage: Usage | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str
    title: str = Field(description="Extension: a readable name.")
    task: Literal["text-to-image", "edit"] = Field(description="Extension: what the model does.")
    available: bool = Field(description="Extension: whether its files are on this machine.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --------------------------------------------------------------------------- native jobs


class ControlBody(_Strict):
    """A control image steering a Z-Image generation (its ControlNet)."""

    type: Literal["canny", "hed", "depth", "pose", "mlsd", "map"] = Field(
        description="canny: edges found in the image (OpenCV); mlsd: its straight line segments (OpenCV's "
        "LSD); hed, depth and pose: made by detector models (`imagestudio models download controlnet-hed` / "
        "`depth-anything-v2-small` / `vitpose-base-simple`); map: the image is already a control map."
    )
    image: str = Field(description="The control image as base64 (PNG, JPEG or WebP; a data: URL too).")
    weight: float | None = Field(
        None, description="Control strength; default 0.75, the model card's 0.65-0.80 allowed."
    )
    start: float = Field(0.0, ge=0.0, le=1.0, description="Share of the steps before the control acts.")
    end: float = Field(1.0, ge=0.0, le=1.0, description="Share of the steps after which it stops.")


class HiresBody(_Strict):
    """The hires pass: upscale each image, then rework it with img2img at a low strength."""

    scale: float = Field(ge=1.0, le=4.0, description="How many times larger.")
    upscaler: str | None = Field(None, description="Upscaler id; default upscale.default_upscaler.")
    strength: float | None = Field(None, gt=0.0, le=1.0, description="img2img strength; default 0.35.")
    steps: StrictInt | None = Field(None, ge=1, le=200, description="Steps of the second pass.")


class GenerateJobBody(_Strict):
    """A text-to-image job."""

    kind: Literal["generate"]
    prompt: Prompt
    model: str | None = Field(None, description="Model id; default z-image-turbo.")
    negative_prompt: NegativePrompt = None
    width: StrictInt | None = Field(None, ge=1, le=16384, description="Pixels, multiple of 16.")
    height: StrictInt | None = Field(None, ge=1, le=16384, description="Pixels, multiple of 16.")
    steps: Steps = None
    guidance_scale: Guidance = None
    seed: Seed = None
    count: StrictInt = Field(1, ge=1, le=MAX_COUNT, description="Images to make (seeds seed, seed+1, …).")
    variety: Variety = None
    weights: str | None = Field(
        None,
        max_length=40,
        description="Weight variant: auto (the config's), bf16, or a GGUF/SDNQ variant (gguf-q4_k_m, "
        "sdnq-uint4 …; GET /api/models lists them).",
    )
    original_prompt: str | None = Field(
        None,
        max_length=MAX_PROMPT_CHARS,
        description="The user's own words when prompt is a rewrite (POST /api/prompts/enhance); recorded.",
    )
    control: ControlBody | None = None
    hires: HiresBody | None = None


class EditJobBody(_Strict):
    """An edit job: 1–3 images and an instruction (Qwen edit), or an image and a mask (Z-Image inpaint)."""

    kind: Literal["edit"]
    prompt: Prompt
    images: list[str] = Field(
        min_length=1,
        max_length=MAX_COUNT,
        description="Input images as base64 (PNG, JPEG or WebP; data: URLs too); the model's limit applies.",
    )
    mask: str | None = Field(
        None, description="Base64 mask for inpainting: transparent (or white, without alpha) = repaint."
    )
    model: str | None = Field(
        None, description="Model id; default qwen-image-edit-2511 (z-image-turbo with a mask)."
    )
    negative_prompt: NegativePrompt = None
    width: StrictInt | None = Field(None, ge=1, le=16384)
    height: StrictInt | None = Field(None, ge=1, le=16384)
    steps: Steps = None
    guidance_scale: Guidance = None
    true_cfg_scale: float | None = Field(None, description="Qwen edit's true CFG scale (the model's bounds).")
    strength: float | None = Field(None, gt=0.0, le=1.0, description="Z-Image img2img/inpaint strength.")
    seed: Seed = None
    count: StrictInt = Field(1, ge=1, le=MAX_COUNT)
    weights: str | None = Field(
        None,
        max_length=40,
        description="Weight variant: auto (the config's), bf16, or a GGUF/SDNQ variant (gguf-q4_k_m, "
        "sdnq-uint4 …; GET /api/models lists them).",
    )


class UpscaleJobBody(_Strict):
    """An upscale job: one picture made ``scale`` times larger by an ESRGAN-family upscaler."""

    kind: Literal["upscale"]
    image: str = Field(description="The picture as base64 (PNG, JPEG or WebP; a data: URL too).")
    upscaler: str | None = Field(
        None, description="Upscaler id (realesrgan-x4plus, tiny-upscaler); default upscale.default_upscaler."
    )
    scale: float = Field(2.0, ge=1.0, le=MAX_UPSCALE, description="How many times larger.")
    prompt: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="What the picture shows (recorded; History finds it)."
    )


JobBody = Annotated[GenerateJobBody | EditJobBody | UpscaleJobBody, Field(discriminator="kind")]


class JobImage(BaseModel):
    id: str
    url: str
    seed: int
    width: int
    height: int


class JobProgressModel(BaseModel):
    image: int = Field(description="Which image of the job is being made (1-based).")
    images: int
    step: int = Field(description="Denoising step just finished (1-based).")
    steps: int
    fraction: float = Field(ge=0.0, le=1.0)
    elapsed_s: float
    eta_s: float | None = Field(description="Estimated seconds left; null until two steps were timed.")


class JobErrorModel(BaseModel):
    message: str
    type: str
    param: str | None = None


class JobStatus(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    model: str | None
    prompt: str | None
    created_at: float = Field(description="Unix time the job was accepted.")
    started_at: float | None
    finished_at: float | None
    queue_position: int | None = Field(description="1 = next to run; null unless queued.")
    progress: JobProgressModel | None
    error: JobErrorModel | None
    images: list[JobImage]
    request: dict[str, Any] = Field(description="The validated request, every default filled in.")
    events_url: str = Field(description="Server-Sent Events with this job's progress.")


class JobList(BaseModel):
    jobs: list[JobStatus]


# --------------------------------------------------------------------------- history and system


class HistoryImage(BaseModel):
    id: str
    job_id: str | None
    url: str
    prompt: str
    negative_prompt: str | None
    model: str | None
    seed: int
    width: int
    height: int
    created_at: float
    parameters: dict[str, Any] = Field(description="Everything recorded with the image (as in its PNG).")


class HistoryPage(BaseModel):
    items: list[HistoryImage]
    total: int = Field(description="Images matching the query, on all pages.")
    limit: int
    offset: int
    query: str | None


class Deleted(BaseModel):
    id: str
    object: Literal["image"] = "image"
    deleted: Literal[True] = True


class QueueInfo(BaseModel):
    running: str | None = Field(description="Id of the running job.")
    queued: int
    max_queue: int
    worker_alive: bool


class AcceleratorInfo(BaseModel):
    name: str
    total_bytes: int
    free_bytes: int
    allocated_bytes: int
    peak_allocated_bytes: int


class MemoryInfo(BaseModel):
    ram_total_bytes: int
    ram_available_bytes: int
    accelerator: AcceleratorInfo | None


class LoadedModelInfo(BaseModel):
    id: str
    placement: str = Field(description="How it sits on the device: full, model_offload, sequential, cpu.")
    dtype: str
    load_seconds: float


class WorkerModelPlan(BaseModel):
    """How one model would run on one worker's box (the doctor's planner, for that box's memory)."""

    model: str
    fits: bool = Field(description="False: the scheduler never sends this model to this worker.")
    plan: str = Field(description="The plan in a few words, or why it does not fit.")
    predicted_peak_vram_gb: float
    predicted_peak_ram_gb: float


class WorkerUpscaler(BaseModel):
    """Whether one upscaler runs on one worker's box (the ``upscale`` extra, its file, its memory)."""

    upscaler: str
    fits: bool = Field(description="False: the scheduler never sends this upscaler's jobs to this worker.")
    plan: str = Field(description="What it needs there, or why it cannot run there.")
    predicted_peak_gb: float


class WorkerInfo(BaseModel):
    """One GPU worker of the cluster backend (``cluster.backend: ray``)."""

    name: str
    host: str
    device: str
    gpu: str | None = Field(description="The accelerator's name; null on CPU.")
    models: list[str] = Field(description="Models on this worker's disk (those it can run).")
    model: str | None = Field(description="The model it holds (or is loading).")
    job: str | None = Field(description="Id of the job it runs.")
    jobs_done: int
    last_answer_at: float | None = Field(description="Unix time of its last step or result.")
    memory_plan: str | None = Field(description="How its last job was placed in memory.")
    address: str | None = Field(None, description="Its node's address on the cluster's network.")
    memory: dict[str, Any] = Field(
        default_factory=dict, description="Its box's card and RAM (simulated: true under --simulate-vram)."
    )
    plans: list[WorkerModelPlan] = Field(
        default_factory=list, description="Each model on its disk and how it would run there."
    )
    loads: dict[str, int] = Field(default_factory=dict, description="Model loads so far, per model.")
    upscalers: list[WorkerUpscaler] = Field(
        default_factory=list, description="Each upscaler and whether its jobs (upscale, hires) run there."
    )


class SystemInfo(BaseModel):
    version: str
    device: str
    loaded_model: LoadedModelInfo | None
    queue: QueueInfo
    memory: MemoryInfo
    models: list[ModelCard]
    workers: list[WorkerInfo] = Field(
        default_factory=list, description="Cluster workers; empty with the in-process queue."
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    worker_alive: bool
