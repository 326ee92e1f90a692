"""Fetch a model from the hub: plan, check the disk, transfer resumably, verify, report progress.

The steps, and why each is done this way:

1. **Plan** (two small requests): the repository's file list with sizes and checksums for one commit
   (``model_info(..., files_metadata=True)``), and its ``model_index.json``; from these,
   :func:`~imagestudio.models.files.select_pipeline_files` picks what the pipeline loads. The revision
   is pinned to that commit so a repository updated mid-download cannot mix two versions.
2. **Disk check** before any byte moves: what is still to fetch (files already in the cache and bytes
   of interrupted transfers do not count) against the free space where it goes, keeping
   ``downloads.min_free_gb`` free.
3. **Transfer** each file resumably, checked against the hub's checksum
   (:mod:`~imagestudio.models.transfer`), reporting progress (:mod:`~imagestudio.models.progress`), and
   move it into place (:mod:`~imagestudio.models.destinations`); ``model_index.json`` goes last, so no
   tool takes an unfinished folder for a pipeline.
4. **Verify** the finished folder (:mod:`~imagestudio.models.verify`).

The result lives in huggingface_hub's cache layout (:mod:`~imagestudio.models.cache`) or, with
``to=DIR``, in a plain folder. No planning call retries on its own: offline mode and unreachable hosts
become one :class:`~imagestudio.errors.ModelNotAvailable` line naming the size and the command.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import (
    DownloadFailed,
    ModelNotAvailable,
    NotEnoughDiskSpace,
    UserError,
)
from imagestudio.models import cache
from imagestudio.models.destinations import CacheDestination, Destination, FolderDestination, RemoteFile
from imagestudio.models.files import MODEL_INDEX, component_folders, is_weights_file, select_pipeline_files
from imagestudio.models.locate import effective_repo
from imagestudio.models.progress import ProgressCallback, ProgressMeter
from imagestudio.models.transfer import (
    HUB_TIMEOUT_S,
    check_cancel,
    exclusive,
    fetch_file,
    http_package,
    request_headers,
    resolve_url,
)
from imagestudio.models.units import human_bytes
from imagestudio.models.verify import VerifyReport, verify_model_dir, verify_single_files
from imagestudio.registry import DetectorSpec, ModelSpec, UpscalerSpec, get_model

if TYPE_CHECKING:
    from imagestudio.config import Settings

DiskUsageFn = Callable[[str], Any]


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of one model at one commit will fetch, known before it starts."""

    model_id: str
    repo_id: str
    revision: str
    commit: str
    endpoint: str
    #: The files the pipeline needs, in fetch order (``model_index.json`` last).
    files: tuple[RemoteFile, ...]
    destination: Destination
    #: Paths already in place (skipped), and bytes of interrupted transfers (resumed).
    present: frozenset[str] = frozenset()
    partial_bytes: dict[str, int] = field(default_factory=dict)
    #: Components whose weights are not fetched (a GGUF variant's base: its transformer is the GGUF file).
    skip_weights: tuple[str, ...] = ()
    #: Single files, not a pipeline (a GGUF transformer): verified by their own headers.
    single_files: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def have_bytes(self) -> int:
        """Bytes already here: whole files in place plus the parts of interrupted ones."""
        return sum(
            f.size if f.path in self.present else self.partial_bytes.get(f.path, 0) for f in self.files
        )

    @property
    def fetch_bytes(self) -> int:
        """Bytes still to come over the network."""
        return self.total_bytes - self.have_bytes

    @property
    def folder(self) -> Path:
        return self.destination.folder(self.commit)


@dataclass(frozen=True)
class DownloadResult:
    model_id: str
    folder: Path
    repo_id: str | None
    commit: str | None
    fetched_bytes: int
    total_bytes: int
    files: int
    elapsed_s: float
    report: VerifyReport
    #: Set when nothing had to be fetched; says why (e.g. the hub could not be asked).
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "path": str(self.folder),
            "repo": self.repo_id,
            "commit": self.commit,
            "fetched_bytes": self.fetched_bytes,
            "total_bytes": self.total_bytes,
            "files": self.files,
            "elapsed_s": round(self.elapsed_s, 3),
            "verified": self.report.ok,
            "note": self.note,
        }


# --- hub access --------------------------------------------------------------------------------


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint`` or huggingface_hub's (``HF_ENDPOINT``), read when called."""
    if endpoint:
        return endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


@contextlib.contextmanager
def hub_errors(
    spec: ModelSpec | UpscalerSpec | DetectorSpec, repo: str, revision: str, endpoint: str
) -> Iterator[None]:
    """Turn huggingface_hub/httpx failures into one line the user can act on."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    http = http_package()
    size = f"{repo}, about {human_bytes(spec.download_bytes)}"
    fallback = f"or point models.{spec.id}.path in config.yaml at a downloaded folder"
    if isinstance(spec, UpscalerSpec):  # an extra model is found by where it lies, not by the config
        fallback = f"or put {spec.filename} into <models_dir>/upscalers/"
    elif isinstance(spec, DetectorSpec):
        fallback = f"or put its files ({', '.join(spec.files)}) into <models_dir>/detectors/{spec.id}/"
    try:
        yield
    except OfflineModeIsEnabled:
        raise ModelNotAvailable(
            f"{spec.id} is not downloaded ({size}) and HF_HUB_OFFLINE=1 forbids reaching the hub: unset it "
            f"and run: imagestudio models download {spec.id} — {fallback}",
            param="model",
            code="download_offline",
            details={"model": spec.id},
        ) from None
    except (http.TimeoutException, http.NetworkError, http.ProxyError) as exc:
        raise ModelNotAvailable(
            f"{spec.id} is not downloaded ({size}) and {endpoint} cannot be reached "
            f"({type(exc).__name__}: {exc or 'no answer'}); check the network, then run: imagestudio models "
            f"download {spec.id} — {fallback}",
            param="model",
            code="download_unreachable",
            details={"model": spec.id, "endpoint": endpoint},
        ) from None
    except GatedRepoError:
        raise UserError(
            f"{repo} needs access: accept its terms on the hub's page and log in with `hf auth login`",
            param="model",
            code="download_gated",
            details={"repo": repo},
        ) from None
    except RevisionNotFoundError:
        raise UserError(
            f"revision {revision!r} does not exist in {repo}",
            param="revision",
            code="download_no_revision",
            details={"revision": revision, "repo": repo},
        ) from None
    except RepositoryNotFoundError:
        raise UserError(
            f"repository {repo} was not found on {endpoint} (check models.{spec.id}.repo)",
            param="model",
            code="download_no_repo",
            details={"repo": repo, "endpoint": endpoint, "model": spec.id},
        ) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DownloadFailed(
            f"the hub answered HTTP {status} for {repo}; try again later",
            code="download_http",
            details={"status": status, "repo": repo},
        ) from None


def _remote_files(info: Any) -> dict[str, RemoteFile]:
    files = {}
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        if lfs is not None:
            files[sibling.rfilename] = RemoteFile(sibling.rfilename, int(lfs.size), str(lfs.sha256), True)
        elif sibling.blob_id is not None and sibling.size is not None:
            files[sibling.rfilename] = RemoteFile(
                sibling.rfilename, int(sibling.size), str(sibling.blob_id), False
            )
    return files


def _read_model_index(remote: dict[str, RemoteFile], repo: str, commit: str, endpoint: str) -> dict[str, Any]:
    # Read into memory, not into the destination: a download refused for lack of space leaves nothing.
    if MODEL_INDEX not in remote:
        raise UserError(
            f"{repo} has no {MODEL_INDEX}: it is not a diffusers pipeline",
            param="model",
            code="download_not_pipeline",
            details={"repo": repo},
        )
    from huggingface_hub.utils import get_session, hf_raise_for_status

    url = resolve_url(repo, MODEL_INDEX, commit, endpoint)
    response = get_session().get(url, headers=request_headers(), timeout=HUB_TIMEOUT_S)
    hf_raise_for_status(response)
    try:
        index = json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DownloadFailed(
            f"{repo}: {MODEL_INDEX} is not valid JSON", code="download_bad_answer", details={"repo": repo}
        ) from None
    if not isinstance(index, dict):
        raise DownloadFailed(
            f"{repo}: {MODEL_INDEX} is not a JSON object", code="download_bad_answer", details={"repo": repo}
        )
    return index


def plan_download(
    settings: Settings,
    model_id: str,
    *,
    revision: str | None = None,
    to: Path | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    repo_id: str | None = None,
    files_only: tuple[str, ...] | None = None,
    skip_weights: tuple[str, ...] = (),
) -> DownloadPlan:
    """Ask the hub what a download of ``model_id`` means: files, sizes, what is already here.

    For weight variants: ``repo_id`` fetches from the variant's repository instead of the model's,
    ``files_only`` fetches just those files (a GGUF file; no ``model_index.json``), ``skip_weights``
    leaves out the weights of those components (the base of a GGUF variant needs no transformer weights).
    """
    spec = get_model(model_id)
    repo = repo_id or effective_repo(spec, settings)
    if repo is None:
        raise UserError(
            f"{spec.id} is built on this machine on first use; there is nothing to download",
            param="model",
            code="nothing_to_download",
            details={"model": spec.id},
        )
    configured = settings.model(spec.id).path
    if configured is not None and to is None and repo_id is None:
        raise UserError(
            f"models.{spec.id}.path is set ({configured}), so a download into the hub cache would not "
            f"be used; remove that line, or download into that folder with --to {configured}",
            param="model",
            code="download_path_set",
            details={"model": spec.id, "path": str(configured)},
        )
    revision = revision or settings.model(spec.id).revision or "main"
    endpoint = hub_endpoint(endpoint)
    destination: Destination = (
        FolderDestination(Path(to).expanduser().absolute())
        if to is not None
        else CacheDestination(cache.hub_cache_root(cache_dir), repo)
    )
    from huggingface_hub import HfApi

    with hub_errors(spec, repo, revision, endpoint):
        info = HfApi(endpoint=endpoint).model_info(
            repo, revision=revision, files_metadata=True, timeout=HUB_TIMEOUT_S
        )
        if not info.sha:
            raise DownloadFailed(
                f"the hub did not say which commit {repo}@{revision} is",
                code="download_bad_answer",
                details={"repo": repo},
            )
        remote = _remote_files(info)
        if files_only is None:
            index = _read_model_index(remote, repo, info.sha, endpoint)
    if files_only is not None:
        missing = [path for path in files_only if path not in remote]
        if missing:
            raise UserError(
                f"{repo} has no file {missing[0]} (the registry's name for it); check the repository",
                param="weights",
                code="download_no_file",
                details={"repo": repo, "file": missing[0]},
            )
        wanted = list(files_only)
    else:
        wanted = [
            path
            for path in select_pipeline_files(remote, component_folders(index))
            if not (path.split("/", 1)[0] in skip_weights and is_weights_file(path))
        ]
    # model_index.json last: until it is in place no tool takes the folder for a finished pipeline.
    ordered = sorted(wanted, key=lambda path: (path == MODEL_INDEX, path))
    files = tuple(remote[path] for path in ordered)
    present = frozenset(f.path for f in files if destination.is_present(info.sha, f))
    partial = {}
    for file in files:
        part = destination.partial_path(file)
        if file.path not in present and part.is_file():
            partial[file.path] = min(part.stat().st_size, file.size)
    return DownloadPlan(
        spec.id, repo, revision, info.sha, endpoint, files, destination, present, partial,
        skip_weights=skip_weights, single_files=files_only is not None,
    )  # fmt: skip


# --- disk ----------------------------------------------------------------------------------------


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_disk_space(
    model_id: str,
    needed_bytes: int,
    target: Path,
    keep_free_bytes: int,
    disk_usage: DiskUsageFn = shutil.disk_usage,
) -> None:
    """Refuse, with the numbers, a download that would not fit (or would leave too little free)."""
    where = _existing_ancestor(target)
    free = int(disk_usage(str(where)).free)
    if needed_bytes + keep_free_bytes <= free:
        return
    keep = (
        f"; {human_bytes(keep_free_bytes)} must stay free (downloads.min_free_gb)" if keep_free_bytes else ""
    )
    raise NotEnoughDiskSpace(
        f"not enough disk space for {model_id}: needs {human_bytes(needed_bytes)}, "
        f"{human_bytes(free)} free on {where}{keep}. Free some space, or download elsewhere "
        "(HF_HUB_CACHE=/other/disk, or --to DIR)",
        param="model",
        code="no_disk_space",
        details={
            "model": model_id,
            "need": human_bytes(needed_bytes + keep_free_bytes),
            "free": human_bytes(free),
            "where": str(where),
        },
    )


def execute_plan(
    plan: DownloadPlan,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Fetch what the plan still needs (call :func:`check_disk_space` first), then verify the folder."""
    started = time.perf_counter()
    meter = ProgressMeter(
        plan.model_id, plan.total_bytes, have_bytes=plan.have_bytes, files_total=len(plan.files),
        files_done=len(plan.present), callback=on_progress,
    )  # fmt: skip
    destination = plan.destination
    destination.begin(plan.revision, plan.commit)
    headers = request_headers()
    spec = get_model(plan.model_id)
    meter.emit(force=True)
    for file in plan.files:
        if file.path in plan.present:
            continue
        check_cancel(cancel, plan.model_id)
        meter.start_file(file.path)
        if destination.reuse(plan.commit, file):
            meter.add(file.size - plan.partial_bytes.get(file.path, 0), transferred=False)
        else:
            part = destination.partial_path(file)
            url = resolve_url(plan.repo_id, file.path, plan.commit, plan.endpoint)
            what = f"{file.path} of {plan.repo_id}"
            with (
                exclusive(destination.lock_path(file), what),
                hub_errors(spec, plan.repo_id, plan.revision, plan.endpoint),
            ):
                fetch_file(file, url, part, meter, model_id=plan.model_id, cancel=cancel, headers=headers)
            destination.place(plan.commit, file, part)
        meter.end_file()
    plan.destination.finish()
    meter.current = None
    meter.emit(force=True)
    report = (
        verify_single_files(plan.folder, [f.path for f in plan.files])
        if plan.single_files
        else verify_model_dir(plan.folder, plan.skip_weights)
    )
    if not report.ok:
        raise DownloadFailed(
            f"{plan.model_id} was downloaded to {plan.folder} but does not verify: {report.summary()}",
            code="download_unverified",
            details={"model": plan.model_id, "summary": report.summary()},
        )
    return DownloadResult(
        plan.model_id, plan.folder, plan.repo_id, plan.commit, meter.fetched, plan.total_bytes,
        len(plan.files), time.perf_counter() - started, report,
    )  # fmt: skip


def download_model(
    settings: Settings,
    model_id: str,
    *,
    revision: str | None = None,
    to: Path | None = None,
    on_progress: ProgressCallback | None = None,
    on_plan: Callable[[DownloadPlan], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: DiskUsageFn = shutil.disk_usage,
) -> DownloadResult:
    """Download ``model_id`` (the files its pipeline needs) and verify it; resumes anything interrupted.

    Refuses before fetching anything when the disk is too small. ``on_progress`` receives
    :class:`DownloadProgress` events; setting ``cancel`` stops at the next chunk with
    :class:`~imagestudio.errors.DownloadCancelled`, keeping what was fetched for the next run.
    When the hub cannot be reached but the model is already here and whole, that is the result.
    """
    from imagestudio.models.state import model_state

    spec = get_model(model_id)
    started = time.perf_counter()
    try:
        plan = plan_download(
            settings, model_id, revision=revision, to=to, endpoint=endpoint, cache_dir=cache_dir
        )
    except ModelNotAvailable:
        state = model_state(spec, settings, cache_dir)
        if to is not None or revision is not None or state.state != "present" or state.path is None:
            raise
        report = verify_model_dir(state.path)
        elapsed = time.perf_counter() - started
        note = "already here; the hub could not be asked for a newer version (offline or unreachable)"
        return DownloadResult(
            spec.id, state.path, state.repo, None, 0, state.size_bytes, 0, elapsed, report, note
        )
    keep_free = int(settings.downloads.min_free_gb * 1000**3)
    check_disk_space(spec.id, plan.fetch_bytes, plan.destination.disk_target(), keep_free, disk_usage)
    if on_plan is not None:
        on_plan(plan)
    return execute_plan(plan, on_progress=on_progress, cancel=cancel)


def download_variant(
    settings: Settings,
    model_id: str,
    weights: str,
    *,
    revision: str | None = None,
    to: Path | None = None,
    on_progress: ProgressCallback | None = None,
    on_plan: Callable[[DownloadPlan], None] | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: DiskUsageFn = shutil.disk_usage,
) -> DownloadResult:
    """Download one weight variant of ``model_id``: only what it needs, checked against the disk first.

    ``bf16``: the model's pipeline (:func:`download_model`). A GGUF variant: the ``.gguf`` file from its
    repository plus the base repository's pipeline without the transformer's weights (configs, tokenizer,
    scheduler, VAE, text encoder) — never the full-precision transformer. An SDNQ variant: its pipeline
    repository. Everything goes into the Hugging Face cache, where the loader looks for it; ``revision``
    applies to the base repository.
    """
    spec = get_model(model_id)
    variant = spec.variant(weights)
    if not variant.quantized:
        return download_model(
            settings, model_id, revision=revision, to=to, on_progress=on_progress, on_plan=on_plan,
            cancel=cancel, endpoint=endpoint, cache_dir=cache_dir, disk_usage=disk_usage,
        )  # fmt: skip
    if variant.repo_id is None:
        raise UserError(
            f"{spec.id} {variant.name} is built on this machine on first use; there is nothing to download",
            param="weights",
            code="nothing_to_download",
            details={"model": spec.id, "weights": variant.name},
        )
    if to is not None:
        raise UserError(
            f"--to downloads bf16 only; {variant.name} goes into the Hugging Face cache (HF_HUB_CACHE picks "
            f"its disk), or fetch its files yourself and set models.{spec.id}.weights_paths.{variant.name}",
            param="to",
            code="download_variant_to",
            details={"model": spec.id, "weights": variant.name},
        )
    started = time.perf_counter()
    hub: dict[str, Any] = {"endpoint": endpoint, "cache_dir": cache_dir}
    plans = []
    if variant.format == "gguf":
        assert variant.filename is not None
        if settings.model(spec.id).path is None:  # a configured base folder is used as it is
            plans.append(
                plan_download(settings, model_id, revision=revision, skip_weights=("transformer",), **hub)
            )
        plans.append(
            plan_download(settings, model_id, repo_id=variant.repo_id, files_only=(variant.filename,), **hub)
        )
    else:
        plans.append(plan_download(settings, model_id, repo_id=variant.repo_id, **hub))
    keep_free = int(settings.downloads.min_free_gb * 1000**3)
    needed = sum(plan.fetch_bytes for plan in plans)
    what = f"{spec.id} {variant.name}"
    check_disk_space(what, needed, plans[-1].destination.disk_target(), keep_free, disk_usage)
    for plan in plans:
        if on_plan is not None:
            on_plan(plan)
    results = [execute_plan(plan, on_progress=on_progress, cancel=cancel) for plan in plans]
    last = results[-1]
    return DownloadResult(
        spec.id, last.folder, last.repo_id, last.commit, sum(r.fetched_bytes for r in results),
        sum(r.total_bytes for r in results), sum(r.files for r in results), time.perf_counter() - started,
        last.report,
    )  # fmt: skip
