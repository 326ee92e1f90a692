"""Control-map detectors on disk: the tiny random-weight ones built from the real classes, and real ones.

A detector is a transformers ``save_pretrained`` folder, or HED's one safetensors file. Search order:
``<models_dir>/detectors/<id>/`` (a copy put there by hand, the built tiny one, or HED converted from its
published pickle), then the hub cache's snapshot of its repository (where :func:`download_detector` puts
the others). A detector with companions (pose: ViTPose needs RT-DETR to find the people) is fetched and
required together with them.

The tiny detectors are the real transformers classes at a few thousand parameters with random weights,
run through the same code as the real ones: Depth Anything (a DINOv2 backbone, the DPT neck and head) makes
noise for a depth map; RT-DETR and ViTPose give the pose map random people and joints. Random RT-DETR
scores every class near its prior (~1 %) and random ViTPose heatmaps peak low, so no person or joint would
ever pass the thresholds: the tiny person detector's "person" logit and the tiny ViTPose's heatmap head are
given a bias at build time, so that the tiny pose path finds people and draws them. Where the boxes and
joints land is still up to the random weights and the picture.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import ModelNotAvailable, UserError
from imagestudio.models import cache
from imagestudio.registry import DETECTORS, DetectorSpec, detector_parts

if TYPE_CHECKING:
    from imagestudio.config import Settings
    from imagestudio.models.progress import ProgressCallback

DETECTORS_DIR = "detectors"
TINY_SEED = 20261209
#: Depth Anything V2's input normalisation (ImageNet's), as its preprocessor config has it.
_IMAGENET_MEAN, _IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


#: The tiny person detector's "person" logit bias: sigmoid(4) ≈ 0.98, over the pose code's box threshold.
TINY_PERSON_LOGIT = 4.0
#: The tiny ViTPose's heatmap bias: every joint's peak lands over the pose code's keypoint threshold.
TINY_HEATMAP_BIAS = 0.5


def build_tiny_detector(dest: Path, detector_id: str = "tiny-depth") -> Path:
    """Write the tiny detector ``detector_id`` (model and preprocessor, the same bytes on every machine)."""
    from imagestudio.models.hed import build_tiny as build_tiny_hed

    builders = {
        "tiny-hed": build_tiny_hed,
        "tiny-depth": _build_tiny_depth,
        "tiny-pose": build_tiny_pose,
        "tiny-person": build_tiny_person,
    }
    return builders[detector_id](dest)


def _build_tiny_depth(dest: Path) -> Path:
    """A Depth Anything (DINOv2 backbone, DPT neck and head) on 56² pictures, with its processor."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    # Dinov2Config takes these through its ``**kwargs`` (transformers' stubs do not list them).
    backbone = Dinov2Config(  # type: ignore[call-arg]
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, patch_size=14,
        image_size=56, out_features=["stage1", "stage2"], reshape_hidden_states=False,
    )  # fmt: skip
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1], fusion_hidden_size=8, head_hidden_size=8, depth_estimation_type="relative",
    )  # fmt: skip
    torch.manual_seed(TINY_SEED)
    model = DepthAnythingForDepthEstimation(config)
    model.save_pretrained(dest, safe_serialization=True)
    processor = DPTImageProcessor(
        do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
        do_normalize=True, image_mean=_IMAGENET_MEAN, image_std=_IMAGENET_STD,
    )  # fmt: skip
    processor.save_pretrained(dest)
    return dest


def build_tiny_pose(dest: Path, *, sure: bool = True) -> Path:
    """A ViTPose (ViT backbone, simple decoder, COCO's 17 keypoints) on 64×48 crops, with its processor.

    ``sure=False`` biases its heatmaps down instead: a pose model that is sure of no joint.
    """
    import torch
    from transformers import (
        VitPoseBackboneConfig,
        VitPoseConfig,
        VitPoseForPoseEstimation,
        VitPoseImageProcessorPil,
    )

    # The configs take ``out_indices``, ``out_features`` and ``num_labels`` through their ``**kwargs``
    # (transformers' stubs do not list them).
    backbone = VitPoseBackboneConfig(  # type: ignore[call-arg]
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=[64, 48],
        patch_size=[16, 16], out_indices=[2],
    )  # fmt: skip
    config = VitPoseConfig(  # type: ignore[call-arg]
        backbone_config=backbone, use_simple_decoder=True, num_labels=17
    )
    torch.manual_seed(TINY_SEED)
    model = VitPoseForPoseEstimation(config)
    bias = model.head.conv.bias
    assert bias is not None, "the simple decoder's convolution has a bias"
    with torch.no_grad():
        bias.fill_(TINY_HEATMAP_BIAS if sure else -2 * TINY_HEATMAP_BIAS)
    model.save_pretrained(dest, safe_serialization=True)
    VitPoseImageProcessorPil(size={"height": 64, "width": 48}).save_pretrained(dest)
    return dest


def build_tiny_person(dest: Path, *, finds_people: bool = True) -> Path:
    """An RT-DETR (ResNet backbone, hybrid encoder, one decoder layer) on 64² pictures, with its processor.

    ``finds_people=False`` leaves the classes at their initial prior: a detector that never finds anyone.
    """
    import torch
    from transformers import (
        RTDetrConfig,
        RTDetrForObjectDetection,
        RTDetrImageProcessorPil,
        RTDetrResNetConfig,
    )

    backbone = RTDetrResNetConfig(  # type: ignore[call-arg]
        embedding_size=8, hidden_sizes=[8, 8, 16, 16], depths=[1, 1, 1, 1], layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )  # fmt: skip
    config = RTDetrConfig(  # type: ignore[call-arg]
        backbone_config=backbone, encoder_in_channels=[8, 16, 16], encoder_hidden_dim=16, encoder_layers=1,
        encoder_ffn_dim=32, encoder_attention_heads=2, hidden_expansion=0.5, d_model=16,
        decoder_in_channels=[16, 16, 16], decoder_layers=1, decoder_ffn_dim=32, decoder_attention_heads=2,
        decoder_n_points=2, num_queries=10, num_denoising=0, anchor_image_size=None,
        num_labels=2, id2label={0: "person", 1: "thing"}, label2id={"person": 0, "thing": 1},
    )  # fmt: skip
    torch.manual_seed(TINY_SEED)
    model = RTDetrForObjectDetection(config)
    if finds_people:
        with torch.no_grad():
            for head in (model.model.enc_score_head, *model.model.decoder.class_embed):
                head.bias[0] = TINY_PERSON_LOGIT
    model.save_pretrained(dest, safe_serialization=True)
    RTDetrImageProcessorPil(size={"height": 64, "width": 64}).save_pretrained(dest)
    return dest


def _complete(folder: Path, spec: DetectorSpec) -> bool:
    return all((folder / name).is_file() for name in spec.files)


def ensure_tiny_detector(dest: Path, spec: DetectorSpec) -> Path:
    """Build the tiny detector at ``dest`` unless it is complete there; built beside it, renamed in."""
    if _complete(dest, spec):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    try:
        from imagestudio.models.quiet import quiet_library_progress

        quiet_library_progress()
        build_tiny_detector(staging, spec.id)
        try:
            staging.rename(dest)
        except OSError:
            if not _complete(dest, spec):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def find_detector(
    spec: DetectorSpec, settings: Settings, *, build_tiny: bool = True, cache_dir: Path | None = None
) -> Path | None:
    """The detector's folder when it is on this machine (the tiny one is built on first use)."""
    local = settings.models_dir / DETECTORS_DIR / spec.id
    if spec.tiny:
        return (
            ensure_tiny_detector(local, spec) if build_tiny else (local if _complete(local, spec) else None)
        )
    if _complete(local, spec):
        return local
    if spec.repo_id is not None and spec.pickle_source is None:  # a pickle's snapshot is never loaded
        snapshot = cache.cached_snapshot(spec.repo_id, None, cache_dir)
        if snapshot is not None and _complete(snapshot, spec):
            return snapshot
    return None


def require_detector(spec: DetectorSpec, settings: Settings) -> Path:
    """The detector's folder when it and its companions are here; else a one-line refusal naming what is
    missing, its size and the command that fetches it."""
    parts = detector_parts(spec)
    found = [find_detector(part, settings) for part in parts]
    missing = [part for part, path in zip(parts, found, strict=True) if path is None]
    if missing:
        files = "; ".join(f"{part.repo_id}, {part.download_bytes / 1e6:.0f} MB" for part in missing)
        raise ModelNotAvailable(
            f"the {spec.control_type} detector {spec.id} is not on this machine ({files}, {spec.license}). "
            f"Get it with: imagestudio models download {spec.id}",
            param="control.type",
            code="detector_missing",
            details={"detector": spec.id},
        )
    path = found[-1]  # the detector itself runs last, after its companions
    assert path is not None, "not missing"
    return path


def download_detector(
    settings: Settings,
    detector_id: str,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    disk_usage: Any = shutil.disk_usage,
) -> Path:
    """Fetch a detector's files, and its companions', into the hub cache (resumable, checked), or find them
    already there; returns the detector's own folder."""
    spec = DETECTORS[detector_id]
    if spec.repo_id is None:
        raise UserError(
            f"{spec.id} is built on this machine on first use; there is nothing to download",
            param="model",
            code="nothing_to_download",
            details={"model": spec.id},
        )
    for companion in spec.companions:
        download_detector(
            settings,
            companion,
            on_progress=on_progress,
            cancel=cancel,
            endpoint=endpoint,
            cache_dir=cache_dir,
            disk_usage=disk_usage,
        )
    return _download_one(
        settings, spec, on_progress=on_progress, cancel=cancel, endpoint=endpoint, cache_dir=cache_dir,
        disk_usage=disk_usage,
    )  # fmt: skip


def _download_one(
    settings: Settings,
    spec: DetectorSpec,
    *,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
    endpoint: str | None,
    cache_dir: Path | None,
    disk_usage: Any,
) -> Path:
    from imagestudio.models.hub_files import fetch_hub_files

    assert spec.repo_id is not None, "a built detector is refused before"
    if spec.pickle_source is not None:
        return _download_converted(
            settings, spec, on_progress=on_progress, cancel=cancel, endpoint=endpoint, disk_usage=disk_usage
        )
    existing = find_detector(spec, settings, cache_dir=cache_dir)
    try:
        return fetch_hub_files(
            settings,
            spec,
            spec.repo_id,
            spec.files,
            on_progress=on_progress,
            cancel=cancel,
            endpoint=endpoint,
            cache_dir=cache_dir,
            disk_usage=disk_usage,
        )
    except ModelNotAvailable:
        if existing is not None:
            return existing
        raise


def _download_converted(
    settings: Settings,
    spec: DetectorSpec,
    *,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
    endpoint: str | None,
    disk_usage: Any,
) -> Path:
    """A detector published as a pickle (HED): its safetensors file in ``<models_dir>/detectors/<id>/``.

    The pickle is fetched (resumably, checked against the hub's SHA-256) into a staging folder beside it,
    never into the hub cache, converted under torch's restricted unpickler and deleted, refused or not. A
    copy of the pickle the user put into the detector's folder (from another tool) is converted the same
    way, without the network.
    """
    from imagestudio.models.destinations import FolderDestination
    from imagestudio.models.hed import convert_checkpoint
    from imagestudio.models.hub_files import fetch_hub_files

    assert spec.repo_id is not None and spec.pickle_source is not None
    local = settings.models_dir / DETECTORS_DIR / spec.id
    target = local / spec.files[0]
    if _complete(local, spec):
        return local
    own_copy = local / spec.pickle_source
    if own_copy.is_file():
        try:
            convert_checkpoint(own_copy, target)
        finally:
            own_copy.unlink(missing_ok=True)
        return local
    staging = FolderDestination(local.parent / f".{spec.id}.download")
    fetched = fetch_hub_files(
        settings, spec, spec.repo_id, (spec.pickle_source,), on_progress=on_progress, cancel=cancel,
        endpoint=endpoint, disk_usage=disk_usage, destination=staging,
    )  # fmt: skip
    try:
        convert_checkpoint(fetched / spec.pickle_source, target)
    finally:
        # The pickle goes whether it converted or not. (An interrupted transfer never gets here: its part
        # file stays in the staging folder for the next try to resume.)
        (fetched / spec.pickle_source).unlink(missing_ok=True)
        staging.finish()  # its emptied partials folder goes; then the staging folder itself
        with contextlib.suppress(OSError):
            staging.root.rmdir()
    return local
