"""LoRAs: find the file a :class:`~imagestudio.lora_refs.LoraRef` names (never downloading), apply, remove.

Rules:

* safetensors only. A ``.bin``/``.pt``/``.ckpt`` file is refused by name, and the file is read with
  ``safetensors`` into a state dict that is handed to diffusers, so no pickle loader is ever reached.
* nothing is downloaded implicitly, like models: a hub LoRA must already be in the Hugging Face cache,
  otherwise the error names its size and the ``hf download`` command that fetches it. Lookups use
  ``local_files_only``, so an offline machine gets the error at once, never a hang.
* every file is found and its header checked before any model loads (a request fails fast).
* a job gets exactly the LoRAs it asks for. The set loaded on a pipeline is remembered on its
  :class:`~imagestudio.engine.manager.LoadedModel`: the same files again only update the scales; a different
  set (or none) first removes every adapter with ``unload_lora_weights``, which puts the original layers
  back, so a job without LoRAs gives the same pixels as one before any LoRA was loaded.

Importing this module is cheap (pydantic only); torch, safetensors and diffusers are imported when used.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import InvalidRequest, ModelNotAvailable
from imagestudio.lora_refs import LORA_SUFFIX, LoraRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from imagestudio.registry import ModelSpec

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: The file diffusers' ``save_lora_weights`` writes; preferred when a folder or repo holds several.
DIFFUSERS_LORA_FILE = "pytorch_lora_weights.safetensors"
MAX_LORAS = 8
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/.+)?$")


@dataclass(frozen=True)
class ResolvedLora:
    """A LoRA whose weight file is on this machine and has a valid safetensors header."""

    ref: LoraRef
    path: Path
    size_bytes: int
    mtime_ns: int

    @property
    def identity(self) -> tuple[str, int, int]:
        """What makes two loads the same weights (path, size, modification time)."""
        return (str(self.path), self.size_bytes, self.mtime_ns)

    def metadata(self) -> dict[str, Any]:
        return {**self.ref.metadata(), "file": self.path.name, "size_bytes": self.size_bytes}


def resolve_loras(refs: Sequence[LoraRef]) -> list[ResolvedLora]:
    """Find every LoRA's file (see module docstring); raises one line for the first problem."""
    if len(refs) > MAX_LORAS:
        raise InvalidRequest(f"{len(refs)} LoRAs given; at most {MAX_LORAS} at once", param="lora")
    return [resolve_lora(ref) for ref in refs]


def resolve_lora(ref: LoraRef, *, size_hint: int = 0) -> ResolvedLora:
    source = ref.source
    _refuse_pickle(source, ref.shown)
    path = Path(source).expanduser()
    if path.is_file():
        return _checked(ref, _require_safetensors(path, ref.shown))
    if path.is_dir():
        return _checked(ref, _pick_file(path, ref.shown))
    if _HUB_ID.match(source) and not source.startswith((".", "/", "~")):
        return _checked(ref, _from_hub_cache(source, size_hint))
    raise InvalidRequest(
        f"LoRA {ref.shown!r} does not exist (a .safetensors file, a folder or a hub repo)", param="lora"
    )


def lightning_ref(spec: ModelSpec, steps: int) -> tuple[LoraRef, int]:
    """The Lightning LoRA of an edit model for ``steps`` and its approximate size (for messages)."""
    file = spec.lightning_file(steps)
    if spec.lightning_repo is None or file is None:
        raise InvalidRequest(f"{spec.id} has no Lightning LoRA for {steps} steps", param="lightning")
    return LoraRef(source=f"{spec.lightning_repo}/{file}", scale=1.0), spec.lightning_bytes


def _refuse_pickle(source: str, shown: str) -> None:
    if source.lower().endswith(PICKLE_SUFFIXES):
        raise InvalidRequest(
            f"LoRA {shown!r} is a pickle file; only .safetensors LoRAs are loaded, because pickle files "
            "can run code when loaded",
            param="lora",
        )


def _require_safetensors(path: Path, source: str) -> Path:
    if path.suffix.lower() != LORA_SUFFIX:
        raise InvalidRequest(f"LoRA {source!r} is not a .safetensors file", param="lora")
    return path


def _pick_file(folder: Path, source: str) -> Path:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == LORA_SUFFIX)
    preferred = folder / DIFFUSERS_LORA_FILE
    if preferred in files:
        return preferred
    if len(files) == 1:
        return files[0]
    if not files:
        pickles = [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
        extra = (
            f" (only pickle files: {', '.join(sorted(pickles))}, which are never loaded)" if pickles else ""
        )
        raise InvalidRequest(f"LoRA folder {source!r} has no .safetensors file{extra}", param="lora")
    names = ", ".join(p.name for p in files[:5])
    raise InvalidRequest(
        f"LoRA folder {source!r} holds several .safetensors files ({names}); name one: {source}/<file>",
        param="lora",
    )


def _from_hub_cache(source: str, size_hint: int) -> Path:
    """A hub LoRA from the local Hugging Face cache only (``local_files_only``: no network, no hang)."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    owner, name, *rest = source.split("/")
    repo = f"{owner}/{name}"
    file = "/".join(rest) or None
    if file is not None:
        _refuse_pickle(file, source)
    try:
        if file is not None:
            return _require_safetensors(Path(hf_hub_download(repo, file, local_files_only=True)), source)
        return _pick_file(Path(snapshot_download(repo, local_files_only=True)), source)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        size = f", about {size_hint / 1000**3:.2f} GB" if size_hint else ""
        command = f"hf download {repo}" + (f" {file}" if file else "")
        raise ModelNotAvailable(
            f"LoRA {source!r} is not on this machine (hub repo {repo}{size}); LoRAs are never downloaded "
            f"implicitly. Get it with: {command}",
            param="lora",
            code="lora_missing",
            details={"lora": source, "command": command},
        ) from None


def _checked(ref: LoraRef, path: Path) -> ResolvedLora:
    """Open the safetensors header (cheap) so a broken file fails before any model loads."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types and OSError
        raise InvalidRequest(
            f"LoRA {ref.shown!r} is not a valid safetensors file ({_detail(exc, ref, path)})", param="lora"
        ) from None
    if not keys:
        raise InvalidRequest(f"LoRA {ref.shown!r} holds no tensors", param="lora")
    if not any("lora" in key.lower() or "lokr" in key.lower() for key in keys):
        raise InvalidRequest(
            f"LoRA {ref.shown!r} is not a LoRA (none of its tensors is a LoRA/LoKr layer)", param="lora"
        )
    stat = path.stat()
    return ResolvedLora(ref=ref, path=path, size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)


def _detail(exc: BaseException, ref: LoraRef, path: Path, limit: int = 300) -> str:
    """A library's error text on one line, cut short, with the file's server path replaced by the name
    the client knows (OSError and some loaders name the full path)."""
    text = " ".join(str(exc).split())
    for where in (str(path), ref.source):
        text = text.replace(where, ref.shown)
    return text[:limit]


def adapter_names(count: int) -> list[str]:
    return [f"imagestudio_{i}" for i in range(count)]


def activate_loras(pipe: Any, loaded_key: tuple[Any, ...], loras: Sequence[ResolvedLora]) -> tuple[Any, ...]:
    """Make exactly ``loras`` active on ``pipe``; returns the key of what is now loaded.

    ``loaded_key`` is what the previous call returned for this pipeline (``()`` for none). Called with the
    model manager's lock held (inside ``acquire``), so no other job sees a half-applied set.
    """
    key = tuple(lora.identity for lora in loras)
    names = adapter_names(len(loras))
    if key and key == loaded_key:
        try:
            pipe.set_adapters(names, adapter_weights=[lora.ref.scale for lora in loras])
        except BaseException:
            remove_loras(pipe)
            raise
        return key
    if loaded_key:
        remove_loras(pipe)
    if not loras:
        return ()
    try:
        for name, lora in zip(names, loras, strict=True):
            _load_one(pipe, name, lora)
        pipe.set_adapters(names, adapter_weights=[lora.ref.scale for lora in loras])
    except BaseException:
        remove_loras(pipe)
        raise
    log.info("LoRAs active: %s", ", ".join(f"{lora.path.name}:{lora.ref.scale}" for lora in loras))
    return key


def _load_one(pipe: Any, name: str, lora: ResolvedLora) -> None:
    from safetensors.torch import load_file

    state = load_file(str(lora.path))
    _check_fits(pipe, lora, state)
    try:
        pipe.load_lora_weights(state, adapter_name=name)
    except (ValueError, KeyError, RuntimeError) as exc:
        detail = _detail(exc, lora.ref, lora.path)
        raise InvalidRequest(
            f"LoRA {lora.ref.shown!r} does not fit this model ({detail})", param="lora"
        ) from None
    loaded = {adapter for adapters in pipe.get_list_adapters().values() for adapter in adapters}
    if name not in loaded:
        raise InvalidRequest(
            f"LoRA {lora.ref.shown!r} has no weights for this model (is it a LoRA for another model?)",
            param="lora",
        )


def _check_fits(pipe: Any, lora: ResolvedLora, state: dict[str, Any]) -> None:
    """Refuse a LoRA whose layers the model does not have, before diffusers tries (and logs a traceback-
    like error of its own). The keys are first converted the way ``load_lora_weights`` converts them
    (``lora_state_dict`` understands the common non-diffusers layouts)."""
    source = lora.ref.shown
    try:
        converted = pipe.lora_state_dict(dict(state))
    except (ValueError, KeyError, RuntimeError, IndexError) as exc:
        detail = _detail(exc, lora.ref, lora.path, limit=200)
        raise InvalidRequest(
            f"LoRA {source!r} is not in a LoRA layout this model reads ({detail})", param="lora"
        ) from None
    if isinstance(converted, tuple):
        converted = converted[0]
    if not converted or not all("lora" in key or "lokr" in key for key in converted):
        raise InvalidRequest(
            f"LoRA {source!r} is not a LoRA (its tensors are not LoRA/LoKr layers)", param="lora"
        )
    modules = {module_name for module_name, _ in pipe.transformer.named_modules()}
    targets = {_layer_of(key.removeprefix("transformer.")) for key in converted}
    missing = sorted(targets - modules)
    if missing:
        raise InvalidRequest(
            f"LoRA {source!r} does not fit this model: {len(missing)} of its {len(targets)} layers do not "
            f"exist in it (first: {missing[0]}); is it a LoRA for another model?",
            param="lora",
        )


def _layer_of(key: str) -> str:
    """``blocks.0.attn.to_q.lora_A.weight`` → ``blocks.0.attn.to_q`` (also for LoKr and bias/alpha keys)."""
    for marker in (".lora_", ".lokr_"):
        if marker in key:
            return key.split(marker, 1)[0]
    return key.rsplit(".", 1)[0]


def remove_loras(pipe: Any) -> None:
    """Remove every adapter, restoring the original layers (no fusing ever happens, so nothing drifts)."""
    pipe.unload_lora_weights()
