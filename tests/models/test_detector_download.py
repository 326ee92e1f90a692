"""A depth detector's folder from a local fake hub: resumed after a drop, found, run by transformers."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from imagestudio import registry
from imagestudio.models.detectors import (
    build_tiny_detector,
    download_detector,
    find_detector,
    require_detector,
)
from tests.helpers import wait_until
from tests.models.conftest import hed_checkpoint
from tests.models.fakehub import FakeHub

pytestmark = pytest.mark.usefixtures("hub_online")

REAL = registry.DETECTORS["depth-anything-v2-small"]


def weights_fetched(hub: FakeHub, count: int) -> list:
    """The hub's GETs of model.safetensors once there are ``count``: it logs a GET when its handler is
    done, which can be just after the client has the last byte."""

    def logged() -> list | None:
        gets = hub.gets("model.safetensors")
        return gets if len(gets) >= count else None

    return wait_until(logged, what=f"{count} GETs of model.safetensors in the hub's log")


@pytest.fixture
def detector_files(tmp_path: Path) -> dict[str, bytes]:
    # The fake hub serves a real transformers folder (the tiny detector's) under the real names.
    folder = build_tiny_detector(tmp_path / "tiny-depth")
    return {name: (folder / name).read_bytes() for name in REAL.files}


@pytest.fixture
def served(detector_files: dict[str, bytes]):
    hub = FakeHub()
    hub.add_repo(REAL.repo_id or "", files={**detector_files, "README.md": b"# depth"})
    hub.start()
    yield hub
    hub.close()


def test_download_resumes_and_the_detector_runs_offline_afterwards(
    served, settings, tmp_path: Path, detector_files
) -> None:
    from transformers import pipeline

    cache = tmp_path / "hf-cache"
    assert find_detector(REAL, settings, cache_dir=cache) is None
    with pytest.raises(Exception, match=r"99 MB, Apache-2\.0"):
        require_detector(REAL, settings)
    served.drop(REAL.repo_id, "model.safetensors", 1000)
    seen: list[int] = []
    folder = download_detector(
        settings,
        REAL.id,
        endpoint=served.url,
        cache_dir=cache,
        on_progress=lambda p: seen.append(p.done_bytes),
    )
    for name, data in detector_files.items():
        assert (folder / name).read_bytes() == data
    first, second = weights_fetched(served, 2)
    assert first.bytes_sent == 1000 and second.range == "bytes=1000-"
    assert [entry.path for entry in served.log if entry.path == "README.md"] == []  # only what it loads
    assert seen and seen[-1] == sum(len(d) for d in detector_files.values())
    assert find_detector(REAL, settings, cache_dir=cache) == folder
    # Offline from here: the folder runs through transformers' own depth-estimation pipeline.
    served.close()
    depth = pipeline("depth-estimation", model=str(folder), device="cpu")(Image.new("RGB", (40, 30), "red"))
    assert depth["depth"].size == (40, 30)
    # a second run finds it and fetches nothing (the hub is gone: the copy here answers)
    assert download_detector(settings, REAL.id, endpoint=served.url, cache_dir=cache) == folder


def test_offline_without_the_detector_says_how_to_get_it(settings, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    from imagestudio.errors import ModelNotAvailable

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotAvailable) as refused:
        download_detector(settings, REAL.id, cache_dir=tmp_path / "hf-cache")
    message = refused.value.message
    assert "imagestudio models download depth-anything-v2-small" in message and "\n" not in message
    assert f"detectors/{REAL.id}/" in message and "config.yaml" not in message


POSE = registry.DETECTORS["vitpose-base-simple"]
PERSON = registry.DETECTORS["rtdetr-r50vd-coco-o365"]


@pytest.fixture
def pose_hub(tmp_path: Path):
    # Both repositories, each serving a real transformers folder (the tiny detector's) under its real name.
    from imagestudio.models.detectors import build_tiny_person, build_tiny_pose

    hub = FakeHub()
    for spec, build in ((POSE, build_tiny_pose), (PERSON, build_tiny_person)):
        folder = build(tmp_path / spec.id)
        hub.add_repo(spec.repo_id or "", files={name: (folder / name).read_bytes() for name in spec.files})
    hub.start()
    yield hub
    hub.close()


def test_the_pose_download_fetches_its_person_detector_too(pose_hub, settings, tmp_path: Path) -> None:
    from transformers import RTDetrForObjectDetection, VitPoseForPoseEstimation

    cache = tmp_path / "hf-cache"
    assert find_detector(POSE, settings, cache_dir=cache) is None
    pose_hub.drop(POSE.repo_id, "model.safetensors", 500)
    folder = download_detector(settings, POSE.id, endpoint=pose_hub.url, cache_dir=cache)
    person = find_detector(PERSON, settings, cache_dir=cache)
    assert person is not None and person != folder
    first, second = weights_fetched(pose_hub, 3)[-2:]  # ViTPose's, resumed; RT-DETR's came first, whole
    assert first.repo == second.repo == POSE.repo_id
    assert first.bytes_sent == 500 and second.range == "bytes=500-"
    assert {entry.repo for entry in pose_hub.log} == {POSE.repo_id, PERSON.repo_id}
    # Offline from here: both load with the real transformers classes.
    pose_hub.close()
    assert isinstance(VitPoseForPoseEstimation.from_pretrained(folder), VitPoseForPoseEstimation)
    assert isinstance(RTDetrForObjectDetection.from_pretrained(person), RTDetrForObjectDetection)
    assert download_detector(settings, POSE.id, endpoint=pose_hub.url, cache_dir=cache) == folder


HED = registry.DETECTORS["controlnet-hed"]


@pytest.fixture
def own(settings, tmp_path: Path):
    """The test's settings with a models folder of its own (the shared one holds other tests' detectors)."""
    models = tmp_path / "models"
    return settings.model_copy(update={"storage": settings.storage.model_copy(update={"models_dir": models})})


@pytest.fixture
def hed_hub(tmp_path: Path):
    hub = FakeHub()
    hub.add_repo(HED.repo_id or "", files={"ControlNetHED.pth": hed_checkpoint(tmp_path), "README.md": b"#"})
    hub.start()
    yield hub
    hub.close()


def test_hed_is_fetched_as_its_pickle_kept_as_safetensors_and_runs_offline(
    hed_hub, own, tmp_path: Path
) -> None:
    from imagestudio.models import hed

    cache = tmp_path / "hf-cache"
    with pytest.raises(Exception, match=r"lllyasviel/Annotators, 29 MB, Apache-2\.0"):
        require_detector(HED, own)
    hed_hub.drop(HED.repo_id, "ControlNetHED.pth", 2000)
    folder = download_detector(own, HED.id, endpoint=hed_hub.url, cache_dir=cache)
    first, second = hed_hub.gets("ControlNetHED.pth")
    assert first.bytes_sent == 2000 and second.range == "bytes=2000-"  # resumed, not started over
    assert folder == own.models_dir / "detectors" / HED.id
    # Only the safetensors file is left, anywhere: no pickle, no staging folder, nothing in the hub cache.
    assert sorted(p.name for p in own.models_dir.rglob("*")) == [
        "ControlNetHED.safetensors",
        "controlnet-hed",
        "detectors",
    ]
    assert not cache.exists()
    assert require_detector(HED, own) == folder
    hed_hub.close()  # offline from here
    network = hed.load_network(folder / hed.WEIGHTS_FILE, "cpu")
    assert hed.hed_map(network, Image.new("RGB", (40, 30), "red")).size == (40, 30)
    assert download_detector(own, HED.id, endpoint=hed_hub.url, cache_dir=cache) == folder


def test_a_hostile_hed_pickle_is_refused_and_deleted(own, tmp_path: Path) -> None:
    import builtins

    from imagestudio.errors import DownloadFailed

    class Hostile:
        def __reduce__(self):
            return (builtins.open, (str(tmp_path / "created-by-the-pickle"), "w"))

    hub = FakeHub()
    hub.add_repo(HED.repo_id or "", files={"ControlNetHED.pth": hed_checkpoint(tmp_path, norm=Hostile())})
    hub.start()
    try:
        with pytest.raises(DownloadFailed, match="is not the HED annotator's checkpoint: it asks for"):
            download_detector(own, HED.id, endpoint=hub.url, cache_dir=tmp_path / "hf-cache")
    finally:
        hub.close()
    assert not (tmp_path / "created-by-the-pickle").exists()
    assert [p for p in own.models_dir.rglob("*") if p.is_file()] == []  # the pickle is gone too
    assert find_detector(HED, own) is None


def test_a_hed_pickle_from_another_tool_is_converted_without_the_network(own, tmp_path: Path) -> None:
    from huggingface_hub import constants

    folder = own.models_dir / "detectors" / HED.id
    folder.mkdir(parents=True)
    (folder / "ControlNetHED.pth").write_bytes(hed_checkpoint(tmp_path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", True)
        assert download_detector(own, HED.id) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["ControlNetHED.safetensors"]
