"""``gradio_client`` (the pages' "Use via API") against a live studio: named parameters, no hidden
inputs, pictures back as files, one-line refusals."""

from __future__ import annotations

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
