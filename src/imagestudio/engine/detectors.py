"""Control maps made by detector models: HED soft edges with the ControlNet annotator's network
(models/hed.py); depth with transformers' ``depth-estimation`` pipeline; pose top-down as transformers'
VitPose docs run it (RT-DETR finds the people, ViTPose places their joints).

Runs inside the job (the manager's lock is held, the diffusion pipeline resident): each detector is
loaded on the job's device, does its part and is dropped before the next one loads and before the
ControlNet runs, so none sits beside the transformer while it denoises.

The processors are transformers' PIL ones, named directly: the default (torchvision) processors need
torchvision, which only the upscale extra installs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagestudio.errors import InvalidRequest, ModelNotAvailable

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image

    from imagestudio.config import Settings

#: A box is a person when RT-DETR is this sure (the score its model card's example keeps).
PERSON_THRESHOLD = 0.5


def require_map_detector(settings: Settings, model_id: str, control_type: str) -> None:
    """Refuse, before any model loads, a control type whose detector is not on this machine."""
    from imagestudio.engine.control import MODEL_DETECTED
    from imagestudio.models.detectors import require_detector
    from imagestudio.registry import detector_for

    spec = detector_for(control_type, model_id) if control_type in MODEL_DETECTED else None
    if spec is not None:
        require_detector(spec, settings)
    if control_type == "pose":
        require_pose_extra()


def require_pose_extra() -> None:
    """One line naming the ``pose`` extra where scipy is missing (looked up, not imported: see pyproject)."""
    from importlib.util import find_spec

    try:
        present = find_spec("scipy") is not None
    except (ImportError, ValueError):
        present = False
    if not present:
        raise ModelNotAvailable(
            "the pose control needs scipy (transformers' ViTPose processor uses it): "
            'pip install "imagestudio[pose]"',
            param="control",
            code="pose_needs_extra",
            details={"extra": "pose", "missing": "scipy"},
        )


def model_map(
    settings: Settings, model_id: str, device: str, control_type: str, picture: Image.Image
) -> Image.Image:
    """The ``control_type`` map of ``picture`` its detector makes (a type in ``MODEL_DETECTED``)."""
    makers = {"hed": hed_map, "depth": depth_map, "pose": pose_map}
    return makers[control_type](settings, model_id, device, picture)


def hed_map(settings: Settings, model_id: str, device: str, picture: Image.Image) -> Image.Image:
    """The soft edges of ``picture`` (white on black) as the HED annotator draws them, an RGB map of its
    size."""
    from imagestudio.engine.manager import free_memory
    from imagestudio.models import hed
    from imagestudio.models.detectors import require_detector
    from imagestudio.registry import detector_for

    spec = detector_for("hed", model_id)
    assert spec is not None, "every model with a ControlNet has a HED detector"
    folder = require_detector(spec, settings)
    network = hed.load_network(folder / hed.WEIGHTS_FILE, device)
    try:
        return hed.hed_map(network, picture)
    finally:
        del network
        free_memory()


def depth_map(settings: Settings, model_id: str, device: str, picture: Image.Image) -> Image.Image:
    """The relative depth of ``picture`` (near = bright), as an RGB map of its size."""
    from transformers import pipeline

    from imagestudio.engine.manager import free_memory
    from imagestudio.models.detectors import require_detector
    from imagestudio.registry import detector_for

    spec = detector_for("depth", model_id)
    assert spec is not None, "every model with a ControlNet has a depth detector"
    folder = require_detector(spec, settings)
    estimator = pipeline("depth-estimation", model=str(folder), device=device)
    try:
        depth = estimator(picture)["depth"]
    finally:
        del estimator
        free_memory()
    map_image: Image.Image = depth.convert("RGB").resize(picture.size)
    return map_image


def pose_map(settings: Settings, model_id: str, device: str, picture: Image.Image) -> Image.Image:
    """The OpenPose-style skeletons of the people in ``picture``, as an RGB map of its size.

    Refuses (one line) a picture where no person, or no joint of one, is found: an empty map would steer
    nothing, silently.
    """
    from PIL import Image

    from imagestudio.engine.manager import free_memory
    from imagestudio.engine.pose_drawing import draw_pose_map, openpose_points
    from imagestudio.models.detectors import require_detector
    from imagestudio.models.quiet import quiet_library_progress
    from imagestudio.registry import DETECTORS, detector_for

    quiet_library_progress()  # the job reports progress; the libraries' loading bars would only interleave
    spec = detector_for("pose", model_id)
    assert spec is not None, "every model with a ControlNet has a pose detector"
    pose_folder = require_detector(spec, settings)
    [person_folder] = [require_detector(DETECTORS[name], settings) for name in spec.companions]
    try:
        boxes = _people(person_folder, device, picture)
        if len(boxes) == 0:
            raise _no_person("the person detector is sure of no one in it")
        people = [openpose_points(k, s) for k, s in _keypoints(pose_folder, device, picture, boxes)]
    finally:
        free_memory()
    if not any(point is not None for points in people for point in points):
        raise _no_person("no joint of the people found is sure enough")
    return Image.fromarray(draw_pose_map(picture.size, people), "RGB")


def _people(folder: Path, device: str, picture: Image.Image) -> Any:
    """The boxes (x, y, width, height in pixels: COCO's layout, which ViTPose takes) of the people found."""
    import torch
    from transformers import RTDetrForObjectDetection, RTDetrImageProcessorPil

    processor = RTDetrImageProcessorPil.from_pretrained(folder)
    model: Any = RTDetrForObjectDetection.from_pretrained(folder)
    model.to(device).eval()
    with torch.inference_mode():
        outputs = model(**processor(images=picture, return_tensors="pt").to(device))
    [found] = processor.post_process_object_detection(
        outputs, threshold=PERSON_THRESHOLD, target_sizes=[(picture.height, picture.width)]
    )
    person = next(i for i, name in model.config.id2label.items() if name == "person")
    del model, outputs
    boxes = found["boxes"][found["labels"] == person].cpu().numpy()
    boxes[:, 2:] -= boxes[:, :2]
    return boxes


def _keypoints(folder: Path, device: str, picture: Image.Image, boxes: Any) -> list[tuple[Any, Any]]:
    """Each person's COCO keypoints (17 × x, y in pixels) and their scores."""
    import torch
    from transformers import VitPoseForPoseEstimation, VitPoseImageProcessorPil

    processor = VitPoseImageProcessorPil.from_pretrained(folder)
    model: Any = VitPoseForPoseEstimation.from_pretrained(folder)
    model.to(device).eval()
    with torch.inference_mode():
        outputs = model(**processor(picture, boxes=[boxes], return_tensors="pt").to(device))
    [poses] = processor.post_process_pose_estimation(outputs, boxes=[boxes])
    del model, outputs
    return [(pose["keypoints"].numpy(), pose["scores"].numpy()) for pose in poses]


def _no_person(why: str) -> InvalidRequest:
    return InvalidRequest(
        f"No person found in the control picture ({why}); use a picture with a person in it, or send a "
        "pose map made elsewhere as type map",
        param="control.image",
        code="no_person",
    )
