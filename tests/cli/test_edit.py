"""``imagestudio edit`` and ``generate --init-image/--mask/--lora`` as a user runs them (fresh processes)."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagestudio.storage.metadata import read_metadata
from tests.helpers import heavy_imports_after, run_cli


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    paths = {}
    for name, seed in (("a.png", 1), ("b.png", 2), ("c.png", 3), ("d.png", 4)):
        array = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / name)
        paths[name] = folder / name
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))
    mask.save(folder / "mask.png")
    paths["mask.png"] = folder / "mask.png"
    (folder / "empty.png").write_bytes(b"")
    paths["empty.png"] = folder / "empty.png"
    (folder / "text.png").write_text("not a picture\n", encoding="utf-8")
    paths["text.png"] = folder / "text.png"
    return paths


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.slow
def test_edit_two_images_reproducibly(config_file: Path, pictures: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = (
        "edit",
        "--model",
        "tiny-qwen-image-edit",
        "-i",
        str(pictures["a.png"]),
        "-i",
        str(pictures["b.png"]),
    )
    args += ("swap them", "--width", "64", "--height", "64", "--steps", "2", "--seed", "3", "--out", str(out))
    arrays = []
    for _ in range(2):
        done = run_cli(*args, config=config_file)
        assert done.returncode == 0, done.stderr
        [line] = done.stdout.splitlines()
        path = Path(line)
        assert path.parent == out
        with Image.open(path) as image:
            assert (image.size, image.format) == ((64, 64), "PNG")
            arrays.append(np.asarray(image))
        meta = read_metadata(path)
        assert (meta["prompt"], meta["seed"], meta["steps"], meta["task"]) == ("swap them", 3, 2, "edit")
        assert [item["name"] for item in meta["input_images"]] == ["a.png", "b.png"]
        assert (meta["true_cfg_scale"], meta["negative_prompt"]) == (4.0, " ")
    assert np.array_equal(arrays[0], arrays[1])
    assert len(list(out.iterdir())) == 2


@pytest.mark.slow
def test_edit_json_and_default_size(config_file: Path, pictures: dict[str, Path], tmp_path: Path) -> None:
    done = run_cli(
        "edit", "-m", "tiny-qwen-image-edit", "-i", str(pictures["a.png"]), "x", "--steps", "2",
        "--seed", "1", "--true-cfg", "1", "--json", "--out", str(tmp_path), config=config_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["model"] == "tiny-qwen-image-edit"
    # 64x48 input, the tiny model's 64² output area, sides rounded to 32: the pipeline's rule
    assert [(i["width"], i["height"]) for i in payload["images"]] == [(64, 64)]
    assert read_metadata(Path(payload["images"][0]["path"]))["negative_prompt"] is None


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("a.png", "b.png", "c.png", "text.png"), "4 input images given; tiny-qwen-image-edit takes 1 to 3"),
        (("empty.png",), "input image 'empty.png' is empty (0 bytes)"),
        (("text.png",), "input image 'text.png' is not an image (PNG, JPEG or WebP expected)"),
        (("a.png", "missing.png"), "input image 'missing.png' does not exist"),
        ((), "needs at least one input image"),
    ],
)
def test_edit_refusals_exit_2_with_one_line(
    config_file: Path, pictures: dict[str, Path], tmp_path: Path, names: tuple[str, ...], expected: str
) -> None:
    images = [arg for name in names for arg in ("-i", str(pictures.get(name, tmp_path / name)))]
    out = tmp_path / "out"
    done = run_cli("edit", "-m", "tiny-qwen-image-edit", *images, "x", "--out", str(out), config=config_file)
    assert expected in one_line_error(done)
    assert not out.exists()


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (20_000, 10_000)])
def test_decompression_bombs_exit_2_with_one_line(
    config_file: Path, tmp_path: Path, width: int, height: int
) -> None:
    # 100 M pixels is where Pillow only warns; 200 M is where it raises: both must read as one line.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(width, height))
    done = run_cli("edit", "-m", "tiny-qwen-image-edit", "-i", str(bomb), "x", config=config_file)
    assert one_line_error(done).startswith(f"error: input image 'bomb.png' has {width * height:,} pixels")


@pytest.mark.slow
def test_generate_init_image_and_mask(config_file: Path, pictures: dict[str, Path], tmp_path: Path) -> None:
    common = (
        "generate",
        "-m",
        "tiny-z-image",
        "a cat",
        "--init-image",
        str(pictures["a.png"]),
        "--seed",
        "5",
    )
    done = run_cli(*common, "--steps", "4", "--strength", "0.5", "--out", str(tmp_path), config=config_file)
    assert done.returncode == 0, done.stderr
    meta = read_metadata(Path(done.stdout.strip()))
    assert (meta["mode"], meta["strength"], meta["denoising_steps"], meta["width"], meta["height"]) == (
        "img2img", 0.5, 2, 64, 48,
    )  # fmt: skip
    done = run_cli(
        *common,
        "--mask",
        str(pictures["mask.png"]),
        "--steps",
        "2",
        "--out",
        str(tmp_path),
        config=config_file,
    )
    assert done.returncode == 0, done.stderr
    meta = read_metadata(Path(done.stdout.strip()))
    assert (meta["mode"], meta["mask"]["name"], meta["strength"]) == ("inpaint", "mask.png", 1.0)


def test_generate_image_refusals(config_file: Path, pictures: dict[str, Path]) -> None:
    base = ("generate", "-m", "tiny-z-image", "a cat")
    cases = [
        (("--mask", str(pictures["mask.png"])), "mask needs an init image"),
        (("--init-image", str(pictures["text.png"])), "init image 'text.png' is not an image"),
        (
            ("--init-image", str(pictures["a.png"]), "--mask", str(pictures["empty.png"])),
            "mask 'empty.png' is empty",
        ),
        (("--init-image", str(pictures["a.png"]), "--strength", "0"), "strength"),
        (("--lora", "style.ckpt"), "is a pickle file"),
    ]
    for args, fragment in cases:
        assert fragment in one_line_error(run_cli(*base, *args, config=config_file)), args


@pytest.mark.slow
def test_generate_with_a_local_lora(config_file: Path, shared_models_dir: Path, tmp_path: Path) -> None:
    """The LoRA's effect and clean removal are shown in tests/engine/test_loras.py; here the CLI plumbing."""
    from tests.tiny_lora import build_tiny_lora

    lora = build_tiny_lora(shared_models_dir / "tiny-z-image", "z-image", tmp_path / "lora")
    args = ("generate", "-m", "tiny-z-image", "a cat", "-W", "64", "-H", "48", "--steps", "2", "--seed", "7")
    done = run_cli(*args, "--lora", f"{lora}:0.8", "--out", str(tmp_path), config=config_file)
    assert done.returncode == 0, done.stderr
    meta = read_metadata(Path(done.stdout.strip()))
    import hashlib

    assert meta["loras"] == [
        {
            "source": str(lora),
            "scale": 0.8,
            "file": lora.name,
            "size_bytes": lora.stat().st_size,
            # The name and hash other tools know it by (A1111's <lora:name:scale> and Lora hashes).
            "name": lora.stem,
            "sha256": hashlib.sha256(lora.read_bytes()).hexdigest()[:12],
        }
    ]


def test_edit_help_does_not_import_torch(app_home: Path) -> None:
    printed = heavy_imports_after(["edit", "--help"])
    assert "HEAVY []" in printed
    assert "--lightning" in printed and "--image" in printed


def test_lightning_without_its_file_names_the_download(config_file: Path, pictures: dict[str, Path]) -> None:
    done = run_cli(
        "edit", "-i", str(pictures["a.png"]), "make it snow", "--lightning", "8", config=config_file
    )
    line = one_line_error(done)
    assert "Qwen-Image-Edit-2511-Lightning-8steps-V1.0-bf16.safetensors" in line
    assert "hf download lightx2v/Qwen-Image-Edit-2511-Lightning" in line
