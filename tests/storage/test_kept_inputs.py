"""An edit's input pictures are kept once by hash next to the results, and go with the last result."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from PIL import Image

from imagestudio.history.store import HistoryStore
from imagestudio.jobs.model import JobState
from imagestudio.storage.inputs import InputLimits, read_input_image
from imagestudio.storage.kept_inputs import INPUTS_DIR, input_shas, kept_input_path
from imagestudio.storage.saved_image import SavedImage


def png_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def record(store: HistoryStore, outputs: Path, job_id: str, inputs: list) -> str:
    request = SimpleNamespace(images=tuple(inputs))
    store.record_job(job_id, kind="edit", model="m", prompt="p", request={}, seed=1, created_at=1.0)
    store.keep_inputs(request)
    path = outputs / f"{job_id}.png"
    path.write_bytes(b"png")
    meta = {"prompt": "p", "input_images": [item.metadata() for item in inputs]}
    image = SavedImage(f"{job_id}-img", path, 1, 24, 16, meta)
    store.finish_job(job_id, JobState.DONE, 2.0, images=[image])
    return image.id


def test_inputs_are_kept_once_and_deleted_with_the_last_result_naming_them(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    store = HistoryStore(tmp_path / "h.sqlite3", outputs)
    limits = InputLimits(10_000_000, 10_000_000)
    red = read_input_image(png_bytes((255, 0, 0)), limits, name="red.png")
    blue = read_input_image(png_bytes((0, 0, 255)), limits, name="blue.png")
    try:
        first = record(store, outputs, "j1", [red, blue])
        second = record(store, outputs, "j2", [red])
        kept = sorted(p.name for p in (outputs / INPUTS_DIR).iterdir())
        assert kept == sorted([f"{red.sha256}.png", f"{blue.sha256}.png"])  # red only once
        meta = store.get_image(first).metadata
        assert input_shas(meta) == [red.sha256, blue.sha256]
        with Image.open(store.input_file(red.sha256)) as picture:
            assert picture.getpixel((0, 0)) == (255, 0, 0)

        store.delete_image(first)
        assert kept_input_path(outputs, blue.sha256) is None  # no one names it any more
        assert kept_input_path(outputs, red.sha256) is not None  # the second edit still does
        store.delete_image(second)
        assert kept_input_path(outputs, red.sha256) is None
        assert store.input_file("../../etc/passwd") is None
    finally:
        store.close()


def test_a_control_picture_is_kept_and_named_by_the_metadata(tmp_path: Path) -> None:
    from imagestudio.job_requests import ControlInput

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    store = HistoryStore(tmp_path / "h.sqlite3", outputs)
    limits = InputLimits(10_000_000, 10_000_000)
    start = read_input_image(png_bytes((0, 255, 0)), limits, name="start.png")
    steer = read_input_image(png_bytes((9, 9, 9)), limits, name="steer.png")
    control = ControlInput.build(type="canny", image=steer, weight=0.7)
    try:
        store.record_job("j", kind="generate", model="m", prompt="p", request={}, seed=1, created_at=1.0)
        store.keep_inputs(SimpleNamespace(init_image=start, control=control))
        path = outputs / "j.png"
        path.write_bytes(b"png")
        meta = {"prompt": "p", "init_image": start.metadata(), "control": control.metadata()}
        image = SavedImage("j-img", path, 1, 24, 16, meta)
        store.finish_job("j", JobState.DONE, 2.0, images=[image])
        assert input_shas(store.get_image(image.id).metadata) == [start.sha256, steer.sha256]
        with Image.open(store.input_file(steer.sha256)) as picture:
            assert picture.getpixel((0, 0)) == (9, 9, 9)
        store.delete_image(image.id)
        assert kept_input_path(outputs, steer.sha256) is None
    finally:
        store.close()
