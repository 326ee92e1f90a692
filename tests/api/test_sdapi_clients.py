"""The gaps real A1111 and OpenAI clients hit, driven by those clients: ``webuiapi`` (the Python client most
scripts use) and the ``openai`` SDK, against a live server on the tiny models."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import openai
import pytest
import webuiapi

from tests.api.conftest import LiveServer, wait_until

pytestmark = pytest.mark.slow

TINY = "tiny-z-image"


def a1111(live: LiveServer) -> webuiapi.WebUIApi:
    host, port = live.url.removeprefix("http://").split(":")
    return webuiapi.WebUIApi(host=host, port=int(port), sampler="Euler", steps=2)


def test_a_fresh_server_defaults_to_the_auto_generate_model(serve) -> None:
    """With server.auto_generate_model set, webuiapi's txt2img works before any model is chosen."""
    live = serve(server={"auto_generate_model": TINY})
    api = a1111(live)
    assert api.get_options()["sd_model_checkpoint"] == TINY
    assert TINY in api.util_get_model_names()
    result = api.txt2img(prompt="a lighthouse", width=64, height=64, steps=2, seed=3)
    assert result.image.size == (64, 64) and result.info["sd_model_name"] == TINY


def test_the_chosen_checkpoint_survives_a_restart(serve) -> None:
    first = serve()
    a1111(first).util_set_model(TINY, find_closest=False)
    assert a1111(first).get_options()["sd_model_checkpoint"] == TINY
    first.stop()
    first.services.close()
    again = serve()
    assert a1111(again).get_options()["sd_model_checkpoint"] == TINY
    assert a1111(again).txt2img(prompt="x", width=64, height=64, steps=2).info["sd_model_name"] == TINY


def test_edit_models_are_not_offered_as_text_to_image_checkpoints(live) -> None:
    """Open WebUI offers every /sd-models entry for txt2img: an edit model there only fails."""
    names = a1111(live).util_get_model_names()
    assert TINY in names and "tiny-qwen-image-edit" not in names


def test_an_interrupted_txt2img_answers_200_as_a1111_does(live) -> None:
    """webuiapi's interrupt must not make the waiting txt2img raise: A1111 answers 200 with what it had."""
    api = a1111(live)
    api.util_set_model(TINY, find_closest=False)
    outcome: dict[str, Any] = {}

    def generate() -> None:
        try:
            outcome["result"] = a1111(live).txt2img(prompt="long", width=256, height=256, steps=200)
        except RuntimeError as exc:  # webuiapi's answer to a non-200; the test fails on it below
            outcome["error"] = exc

    thread = threading.Thread(target=generate)
    thread.start()
    wait_until(lambda: api.get_progress()["state"]["sampling_step"] >= 1 or None, 120, "a running step")
    api.interrupt()
    thread.join(120)
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.images == [] and result.info["interrupted"] is True
    assert result.info["all_seeds"] == [result.info["seed"]]
    assert live.services.queue.worker_alive


def test_negative_prompt_on_turbo_is_accepted_and_recorded_on_v1_as_on_sdapi(live) -> None:
    """The README's promise for both APIs: what a model cannot use is accepted and recorded, not refused."""
    client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x")
    result = client.images.generate(
        model=TINY,
        prompt="a fox",
        size="64x64",
        response_format="b64_json",
        extra_body={"negative_prompt": "blurry", "steps": 2, "seed": 1},
    )
    assert base64.b64decode(result.data[0].b64_json)
    record = live.services.history.get_image(result.data[0].model_extra["id"])
    assert record.metadata["client"]["negative_prompt"] == "blurry"
    assert record.negative_prompt is None
    # The A1111 route records it the same way.
    api = a1111(live)
    api.util_set_model(TINY, find_closest=False)
    made = api.txt2img(prompt="a fox", negative_prompt="blurry", width=64, height=64, steps=2, seed=1)
    again = live.services.history.get_image(made.info["image_ids"][0])
    assert again.metadata["client"]["negative_prompt"] == "blurry"
    assert json.dumps(again.metadata["client"]) and again.negative_prompt is None
