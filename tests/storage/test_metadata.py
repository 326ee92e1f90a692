from __future__ import annotations

from pathlib import Path

from PIL import Image

from imagestudio.storage.metadata import a1111_parameters, png_bytes, read_metadata, read_parameters

META = {
    "model": "tiny-z-image",
    "prompt": "кот в шляпе",
    "seed": 7,
    "width": 64,
    "height": 32,
    "steps": 2,
    "guidance_scale": 0.0,
    "app_version": "0.1.0",
}


def test_round_trip_keeps_cyrillic(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(Image.new("RGB", (64, 32), "red"), META))
    assert read_metadata(path) == META
    params = read_parameters(path)
    assert params is not None and params.startswith("кот в шляпе\nSteps: 2,")
    with Image.open(path) as image:
        assert image.size == (64, 32)
        assert image.getpixel((0, 0)) == (255, 0, 0)


def test_a1111_format() -> None:
    text = a1111_parameters({**META, "negative_prompt": "blurry"})
    lines = text.split("\n")
    assert lines[0] == "кот в шляпе"
    assert lines[1] == "Negative prompt: blurry"
    fields = dict(part.split(": ", 1) for part in lines[2].split(", "))
    assert fields["Seed"] == "7"
    assert fields["Size"] == "64x32"
    assert fields["Model"] == "tiny-z-image"
    assert fields["CFG scale"] == "0.0"


def test_foreign_png_has_no_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(path)
    assert read_metadata(path) == {}
    assert read_parameters(path) is None


def test_parameters_text_has_loras_hashes_and_no_empty_negative() -> None:
    meta = {
        **META,
        "negative_prompt": "",
        "model_hash": "0123456789",
        "loras": [
            {
                "source": "./styles/ink-wash.safetensors",
                "scale": 0.8,
                "name": "ink-wash",
                "sha256": "abcdef012345",
            },
            {"source": "owner/sketchy", "scale": 1.0},
        ],
    }
    text = a1111_parameters(meta)
    first, last = text.split("\n")
    assert first == "кот в шляпе <lora:ink-wash:0.8> <lora:sketchy:1>"
    assert "Negative prompt" not in text
    assert "Model hash: 0123456789, Model: tiny-z-image" in last
    assert 'Lora hashes: "ink-wash: abcdef012345"' in last
    assert 'Hashes: {"model": "0123456789", "lora:ink-wash": "abcdef012345"}' in last


def test_hash_cache_hashes_once_per_file_version(tmp_path: Path) -> None:
    import hashlib
    import os

    from imagestudio.storage.hashes import HashCache

    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights v1")
    cache = HashCache(tmp_path / "home" / "hashes.json")
    assert cache.cached([weights]) is None
    assert cache.sha256([weights]) == hashlib.sha256(b"weights v1").hexdigest()
    assert HashCache(cache.path).cached([weights]) == hashlib.sha256(b"weights v1").hexdigest()
    # Same size and a new mtime: a new version, hashed again (a stale digest would misname the model).
    weights.write_bytes(b"weights v2")
    os.utime(weights, ns=(1, 1))
    assert cache.cached([weights]) is None
    assert cache.sha256([weights]) == hashlib.sha256(b"weights v2").hexdigest()


def test_other_tools_read_a_generated_png(studio, shared_models_dir: Path, tmp_path: Path) -> None:
    """sd-parsers (what image browsers and Civitai-style tools use) reads the prompt, seed, steps, size,
    model, model hash and LoRAs of a real output, made with a LoRA."""
    from sd_parsers import ParserManager

    from imagestudio.job_requests import GenerateRequest
    from imagestudio.lora_refs import parse_lora
    from imagestudio.storage.hashes import HashCache, transformer_files
    from tests.tiny_lora import build_tiny_lora

    lora = build_tiny_lora(shared_models_dir / "tiny-z-image", "z-image", tmp_path / "loras" / "ink")
    request = GenerateRequest.build(
        model="tiny-z-image", prompt="a red fox", width=64, height=48, steps=2, seed=11,
        loras=(parse_lora(f"{lora}:0.5"),),
    )  # fmt: skip
    [saved] = studio.generate(request, out_dir=tmp_path / "out").images

    info = ParserManager().parse(saved.path)
    assert info is not None and info.generator.name == "AUTOMATIC1111"
    [sampler] = info.samplers
    assert sampler.prompts[0].value == f"a red fox <lora:{lora.stem}:0.5>"
    assert sampler.negative_prompts == []
    assert sampler.parameters["seed"] == "11" and sampler.parameters["steps"] == "2"
    assert info.metadata["Size"] == "64x48"
    model_hash = HashCache(studio.settings.history_db.parent / "hashes.json").cached(
        transformer_files(shared_models_dir / "tiny-z-image")
    )
    assert model_hash is not None
    assert sampler.model.name == "tiny-z-image" and sampler.model.hash == model_hash[:10]
    import hashlib

    lora_hash = hashlib.sha256(lora.read_bytes()).hexdigest()[:12]
    assert info.metadata["Hashes"] == {"model": model_hash[:10], f"lora:{lora.stem}": lora_hash}
    assert f'Lora hashes: "{lora.stem}: {lora_hash}"' in info.raw_parameters["parameters"]


def test_big_weights_are_hashed_in_the_background(tmp_path: Path) -> None:
    """A 25 GB transformer must not hold up an image: the first gets no hash, later ones get it."""
    import hashlib

    from imagestudio.storage.hashes import HashCache
    from tests.helpers import wait_until

    weights = tmp_path / "big.safetensors"
    weights.write_bytes(b"pretend this is 25 GB")
    cache = HashCache(tmp_path / "hashes.json")
    assert cache.sha256_soon([weights], wait_below_bytes=1) is None
    wait_until(lambda: cache.cached([weights]) is not None, 30, "the background hash", every=0.01)
    assert (
        cache.sha256_soon([weights], wait_below_bytes=1) == hashlib.sha256(weights.read_bytes()).hexdigest()
    )
    small = tmp_path / "small.safetensors"
    small.write_bytes(b"lora")
    assert cache.sha256_soon([small]) == hashlib.sha256(b"lora").hexdigest()  # small: at once
