"""Settings: the schema of ``config.yaml`` and how it is found and loaded.

The keys are those of the project's original documents (``models.<id>.torch_dtype``,
``device.enable_cpu_offload``, ``generation.default_width`` …) so their config files keep working.
Loading has no side effects: nothing here probes the device, creates a folder or reads the
environment until :func:`load_settings` is called.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from imagestudio.errors import ConfigError
from imagestudio.quoting import clip_message, short_repr

log = logging.getLogger(__name__)

CONFIG_ENV = "IMAGESTUDIO_CONFIG"
HOME_ENV = "IMAGESTUDIO_HOME"
API_KEY_ENV = "IMAGESTUDIO_API_KEY"
DEFAULT_CONFIG_NAME = "config.yaml"

TorchDtype = Literal["bfloat16", "float16", "float32"]
MemoryProfile = Literal["auto", "full", "model_offload", "group_offload", "sequential"]
WeightsStorage = Literal["auto", "bf16", "fp8", "nf4", "int8"]
Switch = Literal["auto", "on", "off"]
AttentionBackend = Literal["auto", "sdpa", "flash", "sage", "xformers"]


#: The per-client queue share when ``server.max_queued_per_client`` is unset and others can connect.
SHARED_SERVER_CLIENT_SHARE = 8


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        # A host name other than localhost may resolve to anything: treat it as public.
        return False


class _Section(BaseModel):
    # A typo in config.yaml must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSettings(_Section):
    """Per-model loading options (``models.<id>``)."""

    torch_dtype: TorchDtype = Field(
        "bfloat16",
        description="Weights dtype at load time. bfloat16 is official; float16 gives NaN/black images "
        "on both models; float32 doubles memory.",
    )
    low_cpu_mem_usage: bool = Field(
        True,
        description="Load weights straight into their final place instead of building a random model first.",
    )
    path: Path | None = Field(
        None, description="A diffusers-format folder with this model; when set, no hub cache is consulted."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) to use.")
    repo: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$",
        description="Hub repository to download from instead of the official one (a mirror or a fork): "
        "owner/name. null = the registry's repository.",
    )
    reference_vae_area: int | None = Field(
        None,
        ge=32 * 32,
        le=2048 * 2048,
        description="Edit models: pixel area each input image is encoded at for the VAE (the pipeline's "
        "VAE_IMAGE_SIZE); null = the registry's value (1024² for Qwen-Image-Edit-2511). Dominates memory "
        "and time on small cards.",
    )
    reference_condition_area: int | None = Field(
        None,
        ge=32 * 32,
        le=2048 * 2048,
        description="Edit models: pixel area each input image is shown to the vision-language encoder at "
        "(the pipeline's CONDITION_IMAGE_SIZE); null = the registry's value (384² for Qwen-Image-Edit-2511).",
    )


class DeviceSettings(_Section):
    """Where and how the models run (``device``)."""

    type: Literal["auto", "cuda", "mps", "cpu"] = Field(
        "auto", description="auto picks CUDA, then Apple MPS, then the CPU."
    )
    enable_cpu_offload: bool = Field(
        False, description="Keep components in RAM and move each to the GPU only while it runs."
    )
    sequential_offload: bool = Field(
        False, description="Stream single layers to the GPU: the smallest footprint and the slowest."
    )
    keep_in_ram: bool = Field(
        False,
        description="When switching models, park the one being unloaded in CPU RAM (if RAM allows) so that "
        "switching back does not read its files again. Only one model is ever on the accelerator.",
    )
    memory_profile: MemoryProfile = Field(
        "auto",
        description="auto plans from the card's memory; full | model_offload | group_offload | sequential "
        "force one (enable_cpu_offload: true means model_offload, sequential_offload: true sequential).",
    )
    weights: WeightsStorage = Field(
        "auto",
        description="Transformer weight storage: bf16, fp8 (stored in fp8, computed in bf16), nf4 "
        "(bitsandbytes) or int8 (torchao); auto picks the best that fits.",
    )
    vram_reserve_gb: float = Field(
        1.0,
        ge=0.0,
        le=64.0,
        description="GPU memory (GiB) every plan leaves free for the display, other programs and "
        "allocator fragmentation.",
    )
    vae_tiling: Switch = Field(
        "auto",
        description="Decode large images tile by tile; auto turns it on when the decode would not fit.",
    )
    attention_backend: AttentionBackend = Field(
        "auto", description="auto = PyTorch SDPA; flash, sage and xformers need their package installed."
    )

    @field_validator("vae_tiling", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare on/off as a boolean.
        if isinstance(value, bool):
            return "on" if value else "off"
        return value

    @model_validator(mode="after")
    def _no_contradictions(self) -> DeviceSettings:
        implied = self.legacy_profile
        if implied is not None and self.memory_profile not in ("auto", implied):
            flag = "sequential_offload" if self.sequential_offload else "enable_cpu_offload"
            raise ValueError(
                f"device.memory_profile: {self.memory_profile} contradicts device.{flag}: true (which means "
                f"{implied}); keep one of the two keys"
            )
        return self

    @property
    def legacy_profile(self) -> str | None:
        """The profile the documents' switches ask for (sequential wins when both are on)."""
        if self.sequential_offload:
            return "sequential"
        if self.enable_cpu_offload:
            return "model_offload"
        return None

    @property
    def requested_profile(self) -> str:
        """``memory_profile``, or what the legacy switches mean when it is auto."""
        if self.memory_profile != "auto":
            return self.memory_profile
        return self.legacy_profile or "auto"


class GenerationSettings(_Section):
    """Defaults for text-to-image (``generation``); null means the model's official value."""

    default_width: int = Field(1024, ge=16, le=4096, description="Image width in pixels.")
    default_height: int = Field(1024, ge=16, le=4096, description="Image height in pixels.")
    default_num_inference_steps: int | None = Field(
        None, ge=1, le=200, description="Denoising steps; null = the model's official count."
    )
    default_guidance_scale: float | None = Field(
        0.0, ge=0.0, le=30.0, description="Guidance; Z-Image-Turbo requires exactly 0."
    )


class StorageSettings(_Section):
    """Where files live (``storage``); relative paths are relative to the config file's folder."""

    models_dir: Path | None = Field(
        None, description="Local model folders and the tiny models; null = HOME/models."
    )
    outputs_dir: Path | None = Field(None, description="Generated images; null = HOME/outputs.")
    history_db: Path | None = Field(
        None, description="SQLite history of jobs and images; null = HOME/history.sqlite3."
    )
    loras_dir: Path | None = Field(
        None,
        description="LoRAs that AUTOMATIC1111 clients name in prompts as <lora:NAME:scale> "
        "(NAME.safetensors here); null = HOME/loras.",
    )


def _default_model_aliases() -> dict[str, str]:
    # What OpenAI clients send unless told otherwise (Open WebUI: dall-e-2, LibreChat: dall-e-3, …).
    return dict.fromkeys(("dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini"), "auto")


class ServerSettings(_Section):
    """The HTTP server and its job queue (``server``, used by ``imagestudio serve``)."""

    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to bind. Anything but loopback requires api_key (or --insecure).",
    )
    port: int = Field(7860, ge=1, le=65535, description="TCP port.")
    api_key: SecretStr | None = Field(
        None,
        description="Bearer key required on every route but /healthz; $IMAGESTUDIO_API_KEY overrides it.",
    )
    api_auth: SecretStr | None = Field(
        None,
        description="'user:password' for HTTP Basic auth, as AUTOMATIC1111's --api-auth (its clients "
        "send Basic auth); accepted besides api_key, and like it required on every route but /healthz.",
    )
    max_queue: int = Field(
        16, ge=1, le=10_000, description="Jobs allowed to wait behind the running one; more get HTTP 429."
    )
    request_timeout_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="How long a synchronous /v1 request waits for its images before its job is cancelled.",
    )
    max_upload_mb: float = Field(
        50.0, gt=0, le=4096, description="Largest request body (all uploaded images together), in MB."
    )
    max_upload_pixels: int = Field(
        50_000_000,
        ge=64 * 64,
        le=1_000_000_000,
        description="Largest uploaded image, in pixels (width × height), checked before it is decoded.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API; empty = CORS off."
    )
    keep_finished_jobs: int = Field(
        500, ge=0, le=100_000, description="Finished jobs kept in memory; older ones are read from history."
    )
    max_concurrent_decodes: int = Field(
        2,
        ge=1,
        le=64,
        description="Uploaded images decoded at the same time (off the event loop); more wait their turn.",
    )
    model_aliases: dict[str, str] = Field(
        default_factory=_default_model_aliases,
        description="OpenAI model names clients send → 'auto' (pick by task) or a model id. Any other "
        "gpt-image-* name counts as 'auto'.",
    )
    auto_generate_model: str = Field(
        "z-image-turbo", description="What 'auto' (and an alias to it) runs for a generation."
    )
    auto_edit_model: str = Field(
        "qwen-image-edit-2511", description="What 'auto' runs for an edit of 1-3 images without a mask."
    )
    auto_inpaint_model: str | None = Field(
        "z-image-turbo",
        description="What 'auto' runs for one image with a mask (Z-Image inpainting); null = refuse masks.",
    )

    @model_validator(mode="after")
    def _auto_models_fit_their_task(self) -> ServerSettings:
        from imagestudio.registry import MODELS

        wanted = (
            ("auto_generate_model", self.auto_generate_model, False),
            ("auto_edit_model", self.auto_edit_model, True),
            ("auto_inpaint_model", self.auto_inpaint_model, False),
        )
        for key, model_id, is_edit in wanted:
            if model_id is None:
                continue
            if model_id not in MODELS:
                raise ValueError(f"{key}: unknown model id {model_id!r}; known: {', '.join(MODELS)}")
            if MODELS[model_id].is_edit != is_edit:
                raise ValueError(f"{key}: {model_id} is {'not ' if is_edit else ''}an edit model")
        for alias, target in self.model_aliases.items():
            if target != "auto" and target not in MODELS:
                raise ValueError(
                    f"model_aliases.{alias}: {target!r} is neither 'auto' nor a model id "
                    f"({', '.join(MODELS)})"
                )
        return self

    @field_validator("api_auth")
    @classmethod
    def _user_and_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            user, sep, password = value.get_secret_value().partition(":")
            if not sep or not user or not password:
                raise ValueError("must be 'user:password' (both non-empty)")
        return value

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Host names the server answers to besides loopback and the address it is reached on "
            '(a defence against DNS rebinding); ["*"] = any.'
        ),
    )
    session_ttl_hours: float = Field(
        720.0, gt=0, le=24 * 366, description="How long a browser's login lasts (with api_key), in hours."
    )
    max_prompt_chars: int = Field(
        4000,
        ge=1,
        le=4000,
        description="Longest prompt (and negative prompt) a job may have, in characters; longer is HTTP 400. "
        "The model reads at most its own token limit of it (Z-Image: 512 tokens); the rest is cut, with a "
        "warning in the image's metadata.",
    )
    max_images_per_request: int = Field(
        16, ge=1, le=16, description="Most images one request may ask for (n / count); more is HTTP 400."
    )
    max_queued_per_client: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Jobs one client address may have waiting or running at once; more is HTTP 429. Unset: "
        f"{SHARED_SERVER_CLIENT_SHARE} on a server other machines can reach, no share on a loopback-only "
        "server (every client there is this machine's user).",
    )
    max_event_streams_per_client: int = Field(
        8,
        ge=1,
        le=10_000,
        description="Open progress streams (/api/jobs/{id}/events) per client address; more is HTTP 429.",
    )
    body_read_timeout_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Time a client has to send a request body once it started; slower is HTTP 408 "
        "(a connection trickling bytes must not hold a worker forever).",
    )
    max_history_page: int = Field(
        200, ge=1, le=1000, description="Largest page of /api/history (its limit); larger is HTTP 400."
    )

    @field_validator("api_key")
    @classmethod
    def _no_blank_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty (leave it out, or null, for no key)")
        return value


class DownloadSettings(_Section):
    """How models are fetched (``downloads``)."""

    min_free_gb: float = Field(
        2.0,
        ge=0,
        le=1_000_000,
        description="Disk space (GB) that must stay free after a download; a download that would leave "
        "less is refused before it starts.",
    )


class InputSettings(_Section):
    """Limits on input images (``inputs``): edit references, init images, masks and uploads."""

    max_input_bytes: int = Field(
        50_000_000, ge=1_000, le=1_000_000_000, description="Largest input image file, in bytes."
    )
    # Pillow warns above ~89.5 million pixels (its own decompression-bomb guard); staying under it means
    # every image Pillow would warn about is one we refuse anyway.
    max_input_pixels: int = Field(
        40_000_000,
        ge=64 * 64,
        le=89_000_000,
        description="Largest input image in pixels (width x height), checked before decoding so a small "
        "file that claims a huge size (a decompression bomb) is refused without being unpacked.",
    )


class McpSettings(_Section):
    """The Model Context Protocol server (``mcp``): ``imagestudio mcp`` and ``/mcp`` on ``serve``."""

    max_image_kb: int = Field(
        700,
        ge=16,
        le=100_000,
        description="Largest base64 size (kB) of the pictures one tool result carries, all together; a "
        "larger image is sent as a downscaled copy and the result says so. Claude Desktop refuses results "
        "over 1 MB.",
    )


class ClusterSettings(_Section):
    """Where jobs run (``cluster``): in this process (the default), or on Ray workers (docs/scale-out.md)."""

    backend: Literal["local", "ray"] = Field(
        "local",
        description="local = one worker thread in this process; ray = GPU workers on Ray "
        '(pip install "imagestudio[cluster]").',
    )
    address: str | None = Field(
        None,
        min_length=1,
        description="A running Ray cluster to join (HOST:PORT of `imagestudio worker --head`); null = start "
        "a private Ray runtime on 127.0.0.1 with local_workers workers.",
    )
    local_workers: int = Field(
        1, ge=0, le=64, description="Workers on this machine when address is null (one per GPU on a GPU box)."
    )
    token_file: Path | None = Field(
        None,
        description="Ray's auth token file for joining `address` (what `imagestudio worker --head` printed); "
        "null = Ray's own default (~/.ray/auth_token or $RAY_AUTH_TOKEN).",
    )
    worker_wait_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="A job whose model no connected worker can load fails after waiting this long.",
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Runs of a job whose worker died, before it fails instead of retrying."
    )
    poll_s: float = Field(2.0, gt=0, le=600, description="How often the head looks for workers that joined.")


def _default_models() -> dict[str, ModelSettings]:
    return {"z-image-turbo": ModelSettings(), "qwen-image-edit-2511": ModelSettings()}


class Settings(_Section):
    """The whole of ``config.yaml``."""

    models: dict[str, ModelSettings] = Field(default_factory=_default_models)
    device: DeviceSettings = Field(default_factory=DeviceSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    downloads: DownloadSettings = Field(default_factory=DownloadSettings)
    inputs: InputSettings = Field(default_factory=InputSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("models")
    @classmethod
    def _known_model_ids(cls, value: dict[str, ModelSettings]) -> dict[str, ModelSettings]:
        from imagestudio.registry import MODELS

        unknown = sorted(set(value) - set(MODELS))
        if unknown:
            raise ValueError(f"unknown model id {unknown[0]!r}; known: {', '.join(MODELS)}")
        for model_id, options in value.items():
            is_edit = MODELS[model_id].is_edit
            for key in ("reference_vae_area", "reference_condition_area"):
                if getattr(options, key) is not None and not is_edit:
                    raise ValueError(f"{key} only applies to edit models; {model_id} is not one")
        return value

    def model(self, model_id: str) -> ModelSettings:
        """Settings for one model; models absent from the file get the defaults."""
        return self.models.get(model_id) or ModelSettings()

    @property
    def models_dir(self) -> Path:
        assert self.storage.models_dir is not None, "load_settings() fills storage paths"
        return self.storage.models_dir

    @property
    def outputs_dir(self) -> Path:
        assert self.storage.outputs_dir is not None, "load_settings() fills storage paths"
        return self.storage.outputs_dir

    @property
    def history_db(self) -> Path:
        assert self.storage.history_db is not None, "load_settings() fills storage paths"
        return self.storage.history_db


def default_home(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The app's own folder: ``$IMAGESTUDIO_HOME`` or ``~/.imagestudio``."""
    env = os.environ if environ is None else environ
    value = env.get(HOME_ENV)
    return Path(value).expanduser() if value else Path.home() / ".imagestudio"


def find_config_file(
    explicit: Path | None, environ: dict[str, str] | None = None, cwd: Path | None = None
) -> Path | None:
    """``--config PATH``, then ``$IMAGESTUDIO_CONFIG``, then ``./config.yaml``, then the user's own
    ``config.yaml`` (see :func:`user_config_files`), else built-in defaults."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}", param="--config")
        return explicit
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV} points at a missing file: {path}", param=CONFIG_ENV)
        return path
    local = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    if local.is_file():
        return local
    return next((path for path in user_config_files(env) if path.is_file()), None)


def user_config_files(environ: os._Environ[str] | dict[str, str] | None = None) -> list[Path]:
    """Where a user's own config lives, so ``imagestudio`` finds it from any folder: the app's home
    (``$IMAGESTUDIO_HOME`` or ``~/.imagestudio``), then the platform's config folder
    (``%APPDATA%\\imagestudio``, ``~/Library/Application Support/imagestudio``, or
    ``$XDG_CONFIG_HOME/imagestudio``, default ``~/.config/imagestudio``)."""
    import sys

    env = os.environ if environ is None else environ
    if sys.platform == "win32" and env.get("APPDATA"):
        platform_dir = Path(env["APPDATA"])
    elif sys.platform == "darwin":
        platform_dir = Path.home() / "Library" / "Application Support"
    else:
        platform_dir = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config").expanduser()
    return [default_home(env) / DEFAULT_CONFIG_NAME, platform_dir / "imagestudio" / DEFAULT_CONFIG_NAME]


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line naming the key, the bad value and what is allowed (pydantic says the allowed part)."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {key!r}"
    message = first["msg"].removeprefix("Value error, ")
    if isinstance(value, dict):
        # A whole-section check (contradicting keys): the message names the keys, the dict adds noise.
        return f"{source}: {message}"
    more = f" (and {len(error.errors()) - 1} more problem(s))" if len(error.errors()) > 1 else ""
    return f"{source}: {key} = {short_repr(value)} is invalid: {message}{more}"


#: A config file is a few hundred bytes; anything this large is not one.
MAX_CONFIG_BYTES = 1_000_000
#: Values (scalars, lists, mappings) the file may hold once its YAML aliases are expanded. A real config
#: has about a hundred; an "alias bomb" (nine aliases of nine aliases of …) claims billions from 1 kB.
MAX_CONFIG_NODES = 100_000


def _check_expansion(root: Any, path: Path) -> None:
    """Refuse a document whose aliases expand past :data:`MAX_CONFIG_NODES` values (or loop).

    Counted on the composed node graph, where an alias is the same node object seen again, with one
    memoised count per node: the cost is the file's size, never its expansion.
    """
    import yaml

    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ConfigError(f"{path}: a YAML alias refers to itself; a config cannot be recursive")
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_nodes.discard(key)
        sizes[key] = total
        if total > MAX_CONFIG_NODES:
            raise ConfigError(
                f"{path}: its YAML aliases expand to more than {MAX_CONFIG_NODES} values; a config needs a "
                "few hundred (refusing what looks like an alias bomb)"
            )
        return total

    if root is not None:
        size(root)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes is too large for a config file")
        text = path.read_text(encoding="utf-8")
        # Parsed twice (the file is small): once into nodes, to bound what aliases expand to before
        # anything is built, then into Python values.
        _check_expansion(yaml.compose(text, Loader=yaml.SafeLoader), path)
        data = yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file") from None
    except ValueError as exc:
        # PyYAML converting a value it parsed: e.g. a 100,000-digit integer (Python refuses those).
        raise ConfigError(f"{path}: a value cannot be read: {clip_message(str(exc), 200)}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Find, read and validate the config; ``overrides`` (from CLI flags) win over the file.

    Raises :class:`ConfigError` with one readable line on any problem.
    """
    config_file = find_config_file(path, environ, cwd)
    data = _read_yaml(config_file) if config_file else {}
    if overrides:
        data = _deep_merge(data, overrides)
    source = str(config_file) if config_file else "settings"
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None

    base = config_file.parent if config_file else (cwd or Path.cwd())
    home = default_home(environ)
    storage = settings.storage
    storage.models_dir = _anchor(storage.models_dir, base) or home / "models"
    storage.outputs_dir = _anchor(storage.outputs_dir, base) or home / "outputs"
    storage.history_db = _anchor(storage.history_db, base) or home / "history.sqlite3"
    storage.loras_dir = _anchor(storage.loras_dir, base) or home / "loras"
    settings.cluster.token_file = _anchor(settings.cluster.token_file, base)
    env = os.environ if environ is None else environ
    if env.get(API_KEY_ENV, "").strip():
        settings.server.api_key = SecretStr(env[API_KEY_ENV].strip())
    for model_id, model in settings.models.items():
        model.path = _anchor(model.path, base)
        if model.torch_dtype == "float16":
            log.warning(
                "models.%s.torch_dtype is float16: both models are known to give NaN/black images in "
                "float16; use bfloat16 (or float32 on GPUs without bf16)",
                model_id,
            )
    return settings


def _anchor(path: Path | None, base: Path) -> Path | None:
    if path is None:
        return None
    path = path.expanduser()
    return path if path.is_absolute() else base / path
