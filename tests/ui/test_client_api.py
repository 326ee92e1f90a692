"""``gradio_client`` (the pages' "Use via API") against a live studio: named parameters, no hidden
inputs, pictures back as files, one-line refusals."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def test_gradio_client_sees_named_parameters_and_generates(studio_server) -> None:
    from gradio_client import Client

    client = Client(studio_server.url, verbose=False, download_files=True)
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    # The form's positional event (param_0 … param_15, hidden language and error boxes) is not offered.
    assert "/generate" not in named and "/edit" not in named
    parameters = named["/generate_image"]["parameters"]
    assert [p["parameter_name"] for p in parameters] == [
        "prompt", "model", "width", "height", "steps", "seed", "count",
    ]  # fmt: skip
    # Only the prompt is required; everything else has the page's default.
    assert [p["parameter_name"] for p in parameters if not p["parameter_has_default"]] == ["prompt"]

    def pixels(files: list) -> np.ndarray:
        (first,) = files
        path = first["path"] if isinstance(first, dict) else first
        return np.asarray(Image.open(path).convert("RGB"))

    kwargs = {"prompt": "a lighthouse for scripts", "width": 64, "height": 48, "steps": 2, "seed": 7}
    first = pixels(client.predict(**kwargs, api_name="/generate_image"))
    assert first.shape == (48, 64, 3)
    # Same seed, same picture: the named parameters reach the request as given.
    assert np.array_equal(pixels(client.predict(**kwargs, api_name="/generate_image")), first)


def test_gradio_client_gets_a_one_line_refusal(studio_server) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(studio_server.url, verbose=False)
    with pytest.raises(AppError) as refused:
        client.predict(prompt="a bad size", width=70, height=64, steps=2, api_name="/generate_image")
    message = str(refused.value)
    assert "70" in message and "\n" not in message.strip() and "Traceback" not in message


def test_gradio_client_edits_a_picture_by_named_parameters(studio_server, tmp_path) -> None:
    import httpx
    from gradio_client import Client, handle_file

    client = Client(studio_server.url, verbose=False, download_files=str(tmp_path / "got"))
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    parameters = named["/edit_image"]["parameters"]
    assert [p["parameter_name"] for p in parameters] == [
        "prompt", "image", "image_2", "image_3", "model", "width", "height", "steps", "seed",
        "true_cfg_scale", "count",
    ]  # fmt: skip
    assert [p["parameter_name"] for p in parameters if not p["parameter_has_default"]] == ["prompt", "image"]

    source = tmp_path / "source.png"
    Image.new("RGB", (30, 90), "navy").save(source)
    second = tmp_path / "second.png"
    Image.new("RGB", (32, 32), "orange").save(second)
    with httpx.Client(base_url=studio_server.url, timeout=60) as http:
        before = http.get("/api/history").json()["total"]
    kwargs = {
        "prompt": "make the sky orange for scripts",
        "steps": 2,
        "seed": 11,
        "model": "tiny-qwen-image-edit",
    }
    (result,) = client.predict(image=handle_file(source), **kwargs, api_name="/edit_image")
    path = result["path"] if isinstance(result, dict) else result
    first = np.asarray(Image.open(path).convert("RGB"))
    # No size given: the output follows the (last) input picture's shape, as on the Edit page.
    assert first.shape[0] > first.shape[1]
    again = client.predict(image=handle_file(source), **kwargs, api_name="/edit_image")
    assert np.array_equal(np.asarray(Image.open(again[0]).convert("RGB")), first)  # same seed, same picture
    two = client.predict(
        image=handle_file(source), image_2=handle_file(second), width=48, height=48, **kwargs,
        api_name="/edit_image",
    )  # fmt: skip
    assert Image.open(two[0]).size == (48, 48)
    with httpx.Client(base_url=studio_server.url, timeout=60) as http:
        history = http.get("/api/history").json()
    # Each call is a job of the one queue and lands in History, like the page's edits.
    assert history["total"] == before + 3
    assert history["items"][0]["prompt"] == kwargs["prompt"]


def test_gradio_client_edit_refusals_are_one_line(studio_server, tmp_path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    source = tmp_path / "source.png"
    Image.new("RGB", (32, 32), "navy").save(source)
    client = Client(studio_server.url, verbose=False)
    for bad, expected in (
        ({"model": "tiny-z-image"}, "tiny-z-image"),  # a text-to-image model is not an edit model
        ({"width": 70, "height": 64}, "70"),
        ({"width": 64}, "height"),
    ):
        with pytest.raises(AppError) as refused:
            client.predict(prompt="x", image=handle_file(source), steps=2, **bad, api_name="/edit_image")
        message = str(refused.value)
        assert expected in message and "\n" not in message.strip() and "Traceback" not in message, message


def test_edit_image_reads_no_file_outside_the_uploads(studio_server, tmp_path) -> None:
    """The same paths the pages refuse (tests/api/test_browser_attacks.py), sent to ``/edit_image`` as a
    script could: none is read or copied, no job starts, and every refusal is the same answer."""
    import httpx
    from gradio.utils import get_upload_folder

    from tests.api.test_browser_attacks import FILE_META, gradio_call, upload_folder_files

    secrets = tmp_path / "not-the-studios"
    secrets.mkdir()
    secret = secrets / "secret.png"
    Image.new("RGB", (48, 48), "green").save(secret)
    (secrets / "secret.txt").write_text("root:x:0:0\n", encoding="utf-8")
    attempts = [
        {"path": str(secret), "meta": FILE_META},
        {"path": str(secret)},  # no meta: Gradio's own file handling does not even see it
        str(secret),  # a bare string
        {"path": str(secrets / "missing.png"), "meta": FILE_META},
        {"path": str(secrets / "secret.txt")},
        {"path": f"{get_upload_folder()}/../{secret.relative_to('/')}"},
        {"path": os.path.relpath(secret)},
    ]
    before = upload_folder_files()
    with httpx.Client(base_url=studio_server.url, timeout=120) as http:
        images_before = http.get("/api/history").json()["total"]
        jobs_before = len(http.get("/api/jobs").json()["jobs"])
        answers = []
        for attempt in attempts:
            # prompt, image, image_2, image_3, model, width, height, steps, seed, true_cfg_scale, count
            data = ["make it blue", attempt, None, None, "tiny-qwen-image-edit", None, None, 2, None, None, 1]
            events = gradio_call(http, "edit_image", data)
            assert events[-1][0] == "error", (attempt, events)
            answers.append(events[-1])
        # The second image is checked as well.
        data = ["make it blue", {"path": str(secret)}, {"path": str(secret)}, None, "tiny-qwen-image-edit"]
        answers.append(gradio_call(http, "edit_image", [*data, None, None, 2, None, None, 1])[-1])
        assert all(answer == answers[0] for answer in answers), answers
        assert "secret" not in json.dumps(answers)
        assert http.get("/api/history").json()["total"] == images_before
        assert len(http.get("/api/jobs").json()["jobs"]) == jobs_before
    copied = [path for path in upload_folder_files() - before if path.read_bytes() == secret.read_bytes()]
    assert not copied, f"the secret was copied into Gradio's cache: {copied}"
