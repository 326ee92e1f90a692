"""What each model's files look like on this machine: present, partial, missing, or tiny.

* ``present`` — a folder was found and :func:`~imagestudio.models.verify.verify_model_dir` finds it whole;
* ``partial`` — something is there but not all of it (an interrupted download, a damaged copy); the
  loader refuses it and ``problem`` says why;
* ``missing`` — nothing is there;
* ``tiny`` — a built-in tiny model that is built on first use (nothing to download).

Only the disk is read: no network, no torch, so ``models list`` answers at once. Where a model's folder
is comes from :mod:`.locate`, the search order every part of the app follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.errors import ModelNotAvailable
from imagestudio.models import cache
from imagestudio.models.files import MODEL_INDEX
from imagestudio.models.locate import Source, effective_repo, find_model_dir, locate, not_available
from imagestudio.models.units import human_bytes
from imagestudio.models.verify import VerifyReport, verify_model_dir
from imagestudio.registry import MODELS, ModelSpec, get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings

StateName = Literal["present", "partial", "missing", "tiny"]

#: The hidden folder inside a plain download target holding transfers in progress.
FOLDER_PARTIAL_DIR = ".imagestudio-download"


@dataclass(frozen=True)
class ModelState:
    """One model as ``models list``, ``GET /api/models`` and the System page show it."""

    id: str
    title: str
    task: str
    state: StateName
    #: The folder the model loads (or would load) from; None when nothing is there.
    path: Path | None
    source: Source | None
    #: Bytes on disk now, partial transfers included.
    size_bytes: int
    #: What a full download fetches, approximately (the registry's figure; 0 for tiny models).
    download_bytes: int
    repo: str | None
    problem: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "task": self.task,
            "state": self.state,
            "path": str(self.path) if self.path else None,
            "source": self.source,
            "size_bytes": self.size_bytes,
            "download_bytes": self.download_bytes,
            "repo": self.repo,
            "problem": self.problem,
        }


def folder_size(folder: Path) -> int:
    """Bytes under ``folder``, following the hub cache's symlinks to their blobs."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def _partial_transfers(
    spec: ModelSpec, settings: Settings, source: Source | None, cache_dir: Path | None
) -> list[Path]:
    """Interrupted transfers that belong to the folder at ``source`` (all of them when none was found)."""
    found: list[Path] = []
    if source in ("models_dir", None):
        found += (settings.models_dir / spec.id / FOLDER_PARTIAL_DIR).glob(f"*{cache.PARTIAL_SUFFIX}")
    repo = effective_repo(spec, settings)
    if source in ("hub_cache", None) and repo is not None and not spec.tiny:
        found += cache.partial_files(repo, cache_dir)
    return found


def model_state(spec: ModelSpec, settings: Settings, cache_dir: Path | None = None) -> ModelState:
    """The state of one model, from the disk alone."""
    folder, source = locate(spec, settings, cache_dir)
    partials = _partial_transfers(spec, settings, source, cache_dir)
    partial_bytes = sum(p.stat().st_size for p in partials if p.is_file())
    base: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title,
        "task": spec.task,
        "download_bytes": 0 if spec.tiny else spec.download_bytes,
        "repo": effective_repo(spec, settings),
    }
    if folder is None:
        if source == "config":
            problem = f"models.{spec.id}.path = {settings.model(spec.id).path} does not exist"
            return ModelState(
                **base, state="missing", path=None, source=source, size_bytes=0, problem=problem
            )
        if partials:
            problem = f"download interrupted ({human_bytes(partial_bytes)} fetched); run it again to resume"
            return ModelState(
                **base, state="partial", path=None, source=None, size_bytes=partial_bytes, problem=problem
            )
        state: StateName = "tiny" if spec.tiny else "missing"
        return ModelState(**base, state=state, path=None, source=None, size_bytes=0)
    report = verify_model_dir(folder)
    # A plain folder holds its own partial transfers; the hub cache keeps them beside the snapshot.
    size = folder_size(folder) + (partial_bytes if source == "hub_cache" else 0)
    if report.ok:
        # Leftover transfers (another tool's, or of a file since replaced) do not make it partial.
        return ModelState(**base, state="present", path=folder, source=source, size_bytes=size)
    damage = report.first_problem
    if partials:
        damage = f"download interrupted ({human_bytes(partial_bytes)} of unfinished files kept); {damage}"
    return ModelState(**base, state="partial", path=folder, source=source, size_bytes=size, problem=damage)


def list_states(settings: Settings, cache_dir: Path | None = None) -> list[ModelState]:
    """Every registry model's state, in registry order."""
    return [model_state(spec, settings, cache_dir) for spec in MODELS.values()]


def fix_command(spec: ModelSpec, source: Source | None) -> str:
    """What the user runs to repair an incomplete model found at ``source`` (a sentence, capitalised)."""
    hint = _fix_hint(spec, source)
    return hint[0].upper() + hint[1:]


def _fix_hint(spec: ModelSpec, source: Source | None) -> str:
    if source == "config":
        return (
            f"details: imagestudio models verify {spec.id}; fix the folder models.{spec.id}.path points at, "
            f"or remove that line and run: imagestudio models download {spec.id}"
        )
    if spec.tiny:
        return (
            f"details: imagestudio models verify {spec.id}; rebuild it with: imagestudio models remove "
            f"{spec.id} --yes (it is rebuilt on next use)"
        )
    return (
        f"details: imagestudio models verify {spec.id}; fetch what is missing: "
        f"imagestudio models download {spec.id}"
    )


def incomplete(
    spec: ModelSpec, folder: Path, report: VerifyReport, source: Source | None
) -> ModelNotAvailable:
    """The loader's one-line refusal of a folder that does not verify."""
    return ModelNotAvailable(
        f"{spec.id} at {folder} is incomplete: {report.summary()}. {fix_command(spec, source)}",
        param="model",
    )


def interrupted_download(spec: ModelSpec, settings: Settings) -> ModelNotAvailable | None:
    """The loader's refusal of a model whose download stopped before its folder took shape, if so."""
    state = model_state(spec, settings)
    if state.state != "partial" or state.source == "config":
        return None
    return ModelNotAvailable(
        f"{spec.id} is only partly downloaded ({human_bytes(state.size_bytes)} of about "
        f"{human_bytes(state.download_bytes)}): resume with: imagestudio models download {spec.id}",
        param="model",
        code="model_partial",
        details={"model": spec.id},
    )


def require_complete(spec: ModelSpec, settings: Settings, folder: Path) -> None:
    """Raise :class:`ModelNotAvailable` unless ``folder`` verifies; used by the loader before loading."""
    report = verify_model_dir(folder)
    if not report.ok:
        options = settings.model(spec.id)
        source: Source = (
            "config"
            if options.path is not None and folder == options.path
            else ("models_dir" if folder == settings.models_dir / spec.id else "hub_cache")
        )
        raise incomplete(spec, folder, report, source)


def require_model_dir(spec: ModelSpec, settings: Settings) -> Path:
    """The model's folder, whole: what the loader loads. A missing, partial or damaged model is refused
    with one line saying how to get or repair it (a tiny model is built on first use)."""
    folder = find_model_dir(spec, settings)
    if folder is None:
        if (interrupted := interrupted_download(spec, settings)) is not None:
            raise interrupted
        configured = settings.model(spec.id).path
        detail = f": models.{spec.id}.path = {configured} has no {MODEL_INDEX}" if configured else ""
        raise not_available(spec, detail)
    # A folder with every file in place but one cut short must never load as if it were whole.
    require_complete(spec, settings, folder)
    return folder


def verify_model(
    settings: Settings, model_id: str, cache_dir: Path | None = None
) -> tuple[ModelState, VerifyReport]:
    """The model's state and the full verification report of its folder.

    Raises :class:`~imagestudio.errors.ModelNotAvailable` when nothing is there to verify. A tiny
    model not built yet is built first (as any use of it would).
    """
    spec = get_model(model_id)
    if spec.tiny:
        find_model_dir(spec, settings)  # builds it when absent
    state = model_state(spec, settings, cache_dir)
    if state.path is None:
        detail = f": {state.problem}" if state.problem else ""
        raise not_available(spec, detail)
    return state, verify_model_dir(state.path)


__all__ = [
    "FOLDER_PARTIAL_DIR",
    "ModelState",
    "folder_size",
    "incomplete",
    "interrupted_download",
    "list_states",
    "model_state",
    "require_complete",
    "require_model_dir",
    "verify_model",
]
