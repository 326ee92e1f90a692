"""The AUTOMATIC1111-compatible API, driven the way real A1111 clients drive it.

The bodies and headers below are the ones Open WebUI (``backend/open_webui/routers/images.py``, the
AUTOMATIC1111 engine), SillyTavern (``src/endpoints/stable-diffusion.js`` forwarding the body built by
its Stable Diffusion extension) and LibreChat (``api/app/clients/tools/structured/StableDiffusion.js``)
send, replayed against a live loopback server on the tiny models; only sizes and steps are small.
"""

from __future__ import annotations

import base64
import io
import json
import threading

import httpx
import pytest
from PIL import Image

from tests.api.conftest import BLOCKER, png_bytes, wait_until

TINY = "tiny-z-image"


def basic(credentials: str) -> str:
    """What Open WebUI's get_automatic1111_api_auth and SillyTavern's getBasicAuthHeader send."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def decode_png(text: str) -> Image.Image:
    assert not text.startswith("data:")
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    assert image.format == "PNG"
    image.load()
    return image


def assert_a1111_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail", "body", "errors"}
    assert body["detail"] and "\n" not in body["detail"] and "Traceback" not in response.text
    return body["detail"]


def test_open_webui_automatic1111_engine(live) -> None:
    """set_image_model: GET options, POST them back with the model; list models; txt2img."""
    with live.client(headers={"authorization": ""}) as client:
        options = client.get("/sdapi/v1/options").json()
        assert options["sd_model_checkpoint"]
        models = client.get("/sdapi/v1/sd-models").json()
        titles = [model["title"] for model in models]
        assert TINY in titles and all("model_name" in model for model in models)
        options["sd_model_checkpoint"] = TINY
        assert client.post("/sdapi/v1/options", json=options).status_code == 200
        assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == TINY

        data = {"prompt": "a lighthouse at dusk", "batch_size": 2, "width": 64, "height": 64, "steps": 2}
        data["negative_prompt"] = "blurry"
        response = client.post("/sdapi/v1/txt2img", json=data)
        assert response.status_code == 200, response.text
        result = response.json()
    assert len(result["images"]) == 2
    assert decode_png(result["images"][0]).size == (64, 64)
    info = json.loads(result["info"])
    assert info["all_seeds"] == [info["seed"], info["seed"] + 1]
    assert info["width"] == 64 and info["height"] == 64 and info["steps"] == 2
    assert info["infotexts"][0].startswith("a lighthouse at dusk\nSteps: 2,")
    # The Turbo model runs without guidance: the negative prompt is recorded, not used or refused.
    meta = _last_metadata(live)
    assert meta["client"]["negative_prompt"] == "blurry"
    assert "Negative prompt" not in info["infotexts"][0]


def _last_metadata(live) -> dict:
    from imagestudio.storage.metadata import read_metadata

    pngs = sorted(live.services.settings.outputs_dir.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    return read_metadata(pngs[-1])


def test_sillytavern_generate_with_basic_auth(serve) -> None:
    """SillyTavern's 'auto' source: Basic auth from its user:password field, its whole body forwarded."""
    live = serve(server={"api_key": "sk-local", "api_auth": "tavern:s3cret"})
    auth = "tavern:s3cret"
    headers = {"Authorization": basic(auth)}
    with live.client() as client:
        assert client.get("/sdapi/v1/options").status_code == 401
        wrong = {"Authorization": basic("tavern:wrong")}
        assert client.get("/sdapi/v1/options", headers=wrong).status_code == 401
        # Any user name with the API key as the password works too.
        by_key = {"Authorization": basic("x:sk-local")}
        assert client.get("/sdapi/v1/samplers", headers=by_key).status_code == 200
        for path in ("samplers", "schedulers", "upscalers", "latent-upscale-modes", "sd-models", "loras"):
            response = client.get(f"/sdapi/v1/{path}", headers=headers)
            assert response.status_code == 200 and isinstance(response.json(), list), path
        assert client.get("/sdapi/v1/upscalers", headers=headers).json()[0]["name"] == "None"
        json_headers = {**headers, "Content-Type": "application/json"}
        set_model = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": TINY}, headers=json_headers)
        assert set_model.status_code == 200
        progress = client.get("/sdapi/v1/progress", headers=headers).json()
        assert progress["progress"] == 0.0 and progress["state"]["job_count"] == 0

        body = {
            "url": "http://127.0.0.1:7860",
            "auth": auth,
            "prompt": "portrait of a knight, detailed armor",
            "negative_prompt": "lowres, bad anatomy, bad hands, text, error",
            "sampler_name": "DPM++ 2M",
            "scheduler": "Karras",
            "steps": 2,
            "cfg_scale": 7,
            "width": 72,
            "height": 60,
            "restore_faces": False,
            "enable_hr": False,
            "hr_upscaler": "Latent",
            "hr_scale": 2,
            "denoising_strength": 0.7,
            "hr_second_pass_steps": 0,
            "seed": -1,
            "override_settings": {"CLIP_stop_at_last_layers": 1},
            "override_settings_restore_afterwards": True,
            "save_images": True,
            "send_images": True,
            "do_not_save_grid": False,
            "do_not_save_samples": False,
        }
        response = client.post("/sdapi/v1/txt2img", json=body, headers=headers)
        assert response.status_code == 200, response.text
        result = response.json()
    image = decode_png(result["images"][0])
    # 72x60 is not a multiple of 16: rounded to the nearest (80x64) and the request recorded.
    assert image.size == (80, 64)
    meta = _last_metadata(live)
    recorded = meta["client"]
    assert recorded["requested_size"] == "72x60"
    assert recorded["cfg_scale"] == 7 and recorded["sampler_name"] == "DPM++ 2M"
    assert recorded["hr_upscaler"] == "Latent"
    # The credentials SillyTavern puts in the body are never stored.
    assert "auth" not in recorded and "url" not in recorded
    assert "s3cret" not in json.dumps(meta) and "s3cret" not in result["parameters"].__repr__()
    assert 0 <= meta["seed"] < 2**32


def test_librechat_stable_diffusion_tool(live) -> None:
    """LibreChat posts a fixed payload with no model and reads images[0] and JSON.parse(info)."""
    with live.client() as client:
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": TINY})
        payload = {
            "prompt": "photo of a man in black clothes, half body, coastline, overcast weather",
            "negative_prompt": "semi-realistic, cgi, 3d, render, sketch, cartoon",
            "cfg_scale": 4.5,
            "steps": 2,
            "width": 64,
            "height": 64,
        }
        response = client.post("/sdapi/v1/txt2img", json=payload)
        assert response.status_code == 200, response.text
        data = response.json()
    image = data["images"][0]
    # LibreChat does Buffer.from(image.split(',', 1)[0], 'base64'): a bare base64 string is required.
    decode_png(image.split(",", 1)[0])
    info = json.loads(data["info"])
    assert {"height", "width", "seed", "infotexts"} <= set(info)
    generation_info = info["infotexts"][0].split("\n").pop()
    assert generation_info.startswith("Steps: 2, ") and f"Seed: {info['seed']}" in generation_info


def test_override_settings_choose_the_model_and_seed_is_kept(live) -> None:
    body = {
        "prompt": "кот",
        "seed": 1234,
        "steps": 2,
        "width": 64,
        "height": 64,
        "n_iter": 2,
        "override_settings": {"sd_model_checkpoint": f"{TINY} [0123456789]"},
    }
    with live.client() as client:
        first = client.post("/sdapi/v1/txt2img", json=body).json()
        again = client.post("/sdapi/v1/txt2img", json=body).json()
    assert json.loads(first["info"])["all_seeds"] == [1234, 1235]
    pixels = [decode_png(result["images"][1]).tobytes() for result in (first, again)]
    assert pixels[0] == pixels[1]


def test_img2img_and_inpaint_on_z_image(live) -> None:
    init = base64.b64encode(png_bytes(64, 64, "blue")).decode()
    mask_image = Image.new("L", (64, 64), 0)
    mask_image.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    mask_image.save(buffer, format="PNG")
    mask = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    with live.client() as client:
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": TINY})
        rework = client.post(
            "/sdapi/v1/img2img",
            json={"prompt": "a red boat", "init_images": [init], "denoising_strength": 0.5, "steps": 2},
        )
        assert rework.status_code == 200, rework.text
        assert decode_png(rework.json()["images"][0]).size == (64, 64)
        assert json.loads(rework.json()["info"])["denoising_strength"] == 0.5
        inpaint = client.post(
            "/sdapi/v1/img2img",
            json={
                "prompt": "a red boat",
                "init_images": [init],
                "mask": mask,
                "denoising_strength": 1.0,
                "inpainting_fill": 1,
                "inpaint_full_res": False,
                "steps": 2,
                "width": 64,
                "height": 64,
            },
        )
        assert inpaint.status_code == 200, inpaint.text
    assert _last_metadata(live)["mode"] == "inpaint"


def test_img2img_with_the_edit_model(live) -> None:
    init = base64.b64encode(png_bytes(48, 32, "green")).decode()
    with live.client() as client:
        body = {
            "prompt": "make it snow",
            "init_images": [init],
            "steps": 2,
            "override_settings": {"sd_model_checkpoint": "tiny-qwen-image-edit"},
        }
        response = client.post("/sdapi/v1/img2img", json=body)
        assert response.status_code == 200, response.text
    assert _last_metadata(live)["task"] == "edit"


def test_errors_are_one_line_in_a1111_shape(live) -> None:
    with live.client() as client:
        sdxl = {"sd_model_checkpoint": "sdxl.safetensors [31e35c80fc]"}
        unknown = client.post("/sdapi/v1/options", json=sdxl)
        assert "tiny-z-image" in assert_a1111_error(unknown, 400)
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": TINY})
        too_many = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "batch_size": 8, "n_iter": 8})
        assert "batch_size" in assert_a1111_error(too_many, 400)
        empty = client.post("/sdapi/v1/txt2img", json={"prompt": "  ", "width": 64, "height": 64})
        assert "prompt" in assert_a1111_error(empty, 400)
        json_type = {"Content-Type": "application/json"}
        not_json = client.post("/sdapi/v1/txt2img", content=b"{", headers=json_type)
        assert_a1111_error(not_json, 400)
        bad_image = client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": ["not base64!"]})
        assert "init_images[0]" in assert_a1111_error(bad_image, 400)
        edit_txt2img = client.post(
            "/sdapi/v1/txt2img",
            json={"prompt": "x", "override_settings": {"sd_model_checkpoint": "tiny-qwen-image-edit"}},
        )
        assert "img2img" in assert_a1111_error(edit_txt2img, 400)
    assert live.services.queue.worker_alive


def test_progress_preview_and_interrupt(live) -> None:
    """While a job runs, progress reports it with a preview; interrupt stops it; the server lives on."""
    with live.client() as client:
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": TINY})
        body = {k: BLOCKER[k] for k in ("prompt", "width", "height", "steps")}
        outcome: dict = {}

        def run() -> None:
            with live.client(timeout=300) as other:
                outcome["response"] = other.post("/sdapi/v1/txt2img", json=body)

        thread = threading.Thread(target=run)
        thread.start()

        def previewing():
            state = client.get("/sdapi/v1/progress").json()
            # The ETA comes once two steps have been timed.
            return state if state["current_image"] and state["eta_relative"] > 0 else None

        state = wait_until(previewing, timeout=120, what="a progress report with a preview")
        assert 0 < state["progress"] < 1 and state["state"]["job_count"] == 1
        assert state["state"]["sampling_steps"] == BLOCKER["steps"]
        decode_png(state["current_image"])
        skipped = client.get("/sdapi/v1/progress", params={"skip_current_image": True}).json()
        assert skipped["current_image"] is None
        assert client.post("/sdapi/v1/interrupt").status_code == 200
        thread.join(120)
        # A1111 answers an interrupted call with 200; this job saved no image.
        assert outcome["response"].status_code == 200, outcome["response"].text
        interrupted = outcome["response"].json()
        assert interrupted["images"] == [] and json.loads(interrupted["info"])["interrupted"] is True
        idle = wait_until(lambda: client.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0 or None)
        assert idle
        memory = client.get("/sdapi/v1/memory").json()
        assert memory["ram"]["total"] > 0
    assert live.services.queue.worker_alive


@pytest.mark.parametrize("path", ["/sdapi/v1/txt2img", "/sdapi/v1/options"])
def test_openapi_lists_the_routes(live, path: str) -> None:
    with live.client() as client:
        assert path in client.get("/openapi.json").json()["paths"]


def test_lora_tags_in_the_prompt_use_the_lora_folder(serve, shared_models_dir, tmp_path) -> None:
    """SillyTavern and A1111 prompt libraries write LoRAs as <lora:NAME:scale> in the prompt."""
    from imagestudio.storage.metadata import read_parameters
    from tests.tiny_lora import build_tiny_lora

    folder = tmp_path / "loras"
    built = build_tiny_lora(shared_models_dir / "tiny-z-image", "z-image", tmp_path / "build")
    folder.mkdir()
    built.rename(folder / "ink-wash.safetensors")
    live = serve(storage={"loras_dir": str(folder)})
    body = {"prompt": "a heron, <lora:ink-wash:0.7>", "steps": 2, "width": 64, "height": 64, "seed": 5}
    with live.client() as client:
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": TINY})
        assert client.get("/sdapi/v1/loras").json() == [
            {"name": "ink-wash", "alias": "ink-wash", "path": "ink-wash.safetensors", "metadata": {}}
        ]
        response = client.post("/sdapi/v1/txt2img", json=body)
        assert response.status_code == 200, response.text
        unknown = client.post("/sdapi/v1/txt2img", json={**body, "prompt": "a <lora:../../etc/passwd:1>"})
        detail = assert_a1111_error(unknown, 400)
        assert "ink-wash" in detail and str(folder) not in detail
    meta = _last_metadata(live)
    assert meta["prompt"] == "a heron"
    assert [(lora["name"], lora["scale"]) for lora in meta["loras"]] == [("ink-wash", 0.7)]
    pngs = sorted(live.services.settings.outputs_dir.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
    assert read_parameters(pngs[-1]).startswith("a heron <lora:ink-wash:0.7>\nSteps: 2,")
    assert json.loads(response.json()["info"])["infotexts"][0].startswith("a heron <lora:ink-wash:0.7>")


def test_basic_auth_alone_guards_every_route(serve) -> None:
    """server.api_auth without an API key is A1111's --api-auth: HTTP Basic on everything but /healthz."""
    live = serve(server={"api_auth": "me:pa55"})
    with live.client() as client:
        refused = client.get("/v1/models")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert client.get("/sdapi/v1/options", headers={"Authorization": "Bearer pa55"}).status_code == 401
        assert (
            client.get("/sdapi/v1/options", headers={"Authorization": "Basic bm90LWJhc2U2NA"}).status_code
            == 401
        )
        assert client.get("/sdapi/v1/options", auth=("me", "pa55")).status_code == 200
        assert client.get("/v1/models", auth=("me", "pa55")).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_api_auth_must_be_user_and_password(make_settings) -> None:
    from imagestudio.errors import ConfigError

    for bad in ("nocolon", ":pass", "user:"):
        with pytest.raises(ConfigError, match=r"server\.api_auth"):
            make_settings(server={"api_auth": bad})
