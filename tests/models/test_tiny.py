"""The tiny offline pipelines: deterministic builds, the real load path, and real inference on CPU.

These tests guard the promises the rest of the suite relies on: every machine builds the same bytes, the
folders load through ``from_pretrained`` exactly like the real models (the Qwen processor included, with
or without torchvision), and the tiny tokenizer keeps the Qwen edit pipeline on its real code path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from imagestudio.models import processor, random_weights, tiny

TOKENIZER_FINGERPRINT = "b422324c8234c9b19c11af5fb0a67211a61f33aeb54ac25f6c4fc508c02e4bc7"
REDRAW_FINGERPRINT = "75b7715771e4a03423513d02bfced8a288937c4e1f236105fd52bcd14e4008e5"


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both tiny models, built once for this module straight through their builders."""
    root = tmp_path_factory.mktemp("tiny")
    return {
        "tiny-z-image": tiny.build_tiny_z_image(root / "z"),
        "tiny-qwen-image-edit": tiny.build_tiny_qwen_edit(root / "q"),
    }


@pytest.fixture(scope="module")
def z_pipe(built: dict[str, Path]):
    import torch
    from diffusers import ZImagePipeline

    pipe = ZImagePipeline.from_pretrained(built["tiny-z-image"], dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def edit_processor_kwargs(folder: Path) -> dict[str, object]:
    """What the loader passes: the torchvision-free processor only when torchvision is missing."""
    if processor.needs_processor_workaround():
        return {"processor": processor.load_processor_without_torchvision(folder / "processor")}
    return {}


@pytest.fixture(scope="module")
def qwen_pipe(built: dict[str, Path]):
    import torch
    from diffusers import QwenImageEditPlusPipeline

    folder = built["tiny-qwen-image-edit"]
    pipe = QwenImageEditPlusPipeline.from_pretrained(
        folder, dtype=torch.bfloat16, **edit_processor_kwargs(folder)
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------------ determinism


@pytest.mark.parametrize("model_id", sorted(tiny.TINY_BUILDERS))
def test_two_builds_are_byte_identical(model_id: str, built: dict[str, Path], tmp_path: Path) -> None:
    again = tiny.TINY_BUILDERS[model_id](tmp_path / "again")
    first, second = file_hashes(built[model_id]), file_hashes(again)
    assert sum(name.endswith(".safetensors") for name in first) == 3
    assert first == second


def test_tokenizer_training_is_canonical_and_pinned() -> None:
    # Each training run gets fresh Rust hash maps (random iteration order), so repeating it in one
    # process already exercises what differs between processes. The pinned fingerprint catches a change
    # of the corpus or of `tokenizers`' training, which would change every tiny model's files.
    runs = [tiny._tiny_vocab_and_merges.__wrapped__() for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    digest = hashlib.sha256(json.dumps(list(runs[0]), ensure_ascii=False).encode()).hexdigest()
    assert digest == TOKENIZER_FINGERPRINT


def test_weight_redraw_is_pinned() -> None:
    # Same bits on every machine: uniform draws and exactly rounded arithmetic only.
    import torch

    layer = torch.nn.Linear(4, 3)
    random_weights.redraw_portably(layer, 0)
    weight, bias = layer.weight.detach(), layer.bias.detach()
    assert hashlib.sha256(weight.numpy().tobytes() + bias.numpy().tobytes()).hexdigest() == REDRAW_FINGERPRINT
    assert float(weight.abs().max()) <= 0.5  # 1 / sqrt(fan_in = 4)
    assert float(bias.abs().max()) <= 0.02


def test_weight_redraw_keeps_norm_scales_and_fills_zero_pad_tokens() -> None:
    import torch

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = torch.nn.LayerNorm(8)
            self.pad_token = torch.nn.Parameter(torch.zeros(1, 8))
            self.proj = torch.nn.Linear(8, 8)
            torch.nn.init.zeros_(self.proj.weight)

    block = Block()
    random_weights.redraw_portably(block, 1)
    assert torch.equal(block.norm.weight, torch.ones(8))
    assert block.norm.bias.abs().max() > 0  # a zero bias is redrawn, small
    assert block.pad_token.abs().min() > 0
    assert block.proj.weight.abs().min() > 0


# --------------------------------------------------------------------------------------- tokenizer


def test_system_prompt_is_exactly_the_edit_pipelines_drop_index(qwen_pipe) -> None:
    """The tiny tokenizer must drop exactly the system prompt, as the real one does (64 tokens)."""
    template: str = qwen_pipe.prompt_template_encode
    prefix = template.split("{}")[0]
    assert tiny.QWEN_EDIT_SYSTEM_PROMPT in prefix
    tokenizer = qwen_pipe.processor.tokenizer
    prefix_ids = tokenizer(prefix)["input_ids"]
    assert len(prefix_ids) == qwen_pipe.prompt_template_encode_start_idx == 64

    # In context (as the pipeline encodes it), the first 64 tokens are the same and the rest is the request.
    request = "Picture 1: <|vision_start|><|image_pad|><|vision_end|>кот в шляпе"
    full_ids = tokenizer(template.format(request))["input_ids"]
    drop = qwen_pipe.prompt_template_encode_start_idx
    assert full_ids[:drop] == prefix_ids
    assert tokenizer.decode(full_ids[drop:]) == request + "<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("subfolder", ["tokenizer", "processor"])
@pytest.mark.parametrize("text", ["кот в шляпе", "Ёжик в тумане, 1975 год — «шедевр»! 🦔", "A cat in a hat"])
def test_tokenizer_round_trips_without_unknowns(built: dict[str, Path], subfolder: str, text: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["tiny-qwen-image-edit"] / subfolder)
    ids = tokenizer(text)["input_ids"]
    # Qwen2's unk token is <|endoftext|>; its BPE has no unk and would silently drop what it cannot encode,
    # so a lossless round trip is the real proof that nothing was unknown.
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text


def test_cyrillic_prompt_tokens_are_learned_words(built: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["tiny-z-image"] / "tokenizer")
    assert len(tokenizer("кот в шляпе")["input_ids"]) == 3  # "кот", " в", " шляпе"


def test_tokenizer_special_tokens_follow_qwen_order(built: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["tiny-z-image"] / "tokenizer")
    added = tiny._QWEN_SPECIAL_TOKENS + tiny._QWEN_PLAIN_ADDED_TOKENS
    ids = tokenizer.convert_tokens_to_ids(list(added))
    assert ids == list(range(ids[0], ids[0] + len(added)))
    assert ids[-1] == len(tokenizer) - 1
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    # <think> is a plain added token, kept when special tokens are skipped (as in Qwen3).
    assert tokenizer.decode(tokenizer("<think>hi</think>")["input_ids"], skip_special_tokens=True) == (
        "<think>hi</think>"
    )


def test_chat_template_matches_qwen3_for_one_user_turn(built: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["tiny-z-image"] / "tokenizer")
    messages = [{"role": "user", "content": "кот"}]
    thinking = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    assert thinking == "<|im_start|>user\nкот<|im_end|>\n<|im_start|>assistant\n"
    plain = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert plain == thinking + "<think>\n\n</think>\n\n"


# ------------------------------------------------------------------------------ folder and loading


def test_qwen_folder_names_the_real_processor(built: dict[str, Path]) -> None:
    folder = built["tiny-qwen-image-edit"]
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    assert index["processor"] == ["transformers", "Qwen2VLProcessor"]
    assert index["tokenizer"] == ["transformers", "Qwen2Tokenizer"]
    image_config = json.loads((folder / "processor" / "preprocessor_config.json").read_text(encoding="utf-8"))
    assert image_config["image_processor_type"] == "Qwen2VLImageProcessor"
    assert image_config["processor_class"] == "Qwen2VLProcessor"
    video_config = json.loads(
        (folder / "processor" / "video_preprocessor_config.json").read_text(encoding="utf-8")
    )
    assert video_config["video_processor_type"] == "Qwen2VLVideoProcessor"
    transformer_config = json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    assert transformer_config["zero_cond_t"] is True


def test_text_encoder_vision_ids_are_the_tokenizers(qwen_pipe) -> None:
    tokenizer = qwen_pipe.processor.tokenizer
    config = qwen_pipe.text_encoder.config
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert config.text_config.vocab_size == len(tokenizer)


def test_needs_processor_workaround_tracks_torchvision() -> None:
    assert processor.needs_processor_workaround() is (importlib.util.find_spec("torchvision") is None)


def test_torchvision_free_processor_loads_a_hub_style_folder(built: dict[str, Path], tmp_path: Path) -> None:
    """The real repository's preprocessor config (older transformers' keys) loads too."""
    import shutil

    from transformers import Qwen2VLImageProcessorPil, Qwen2VLProcessor

    folder = tmp_path / "processor"
    shutil.copytree(built["tiny-qwen-image-edit"] / "processor", folder)
    legacy = {
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "Qwen2VLImageProcessorFast",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "max_pixels": 12845056,
        "merge_size": 2,
        "min_pixels": 3136,
        "patch_size": 14,
        "processor_class": "Qwen2VLProcessor",
        "temporal_patch_size": 2,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(legacy), encoding="utf-8")
    loaded = processor.load_processor_without_torchvision(folder)
    assert isinstance(loaded, Qwen2VLProcessor)
    assert isinstance(loaded.image_processor, Qwen2VLImageProcessorPil)
    assert not hasattr(loaded, "video_processor")
    assert (loaded.image_processor.size.shortest_edge, loaded.image_processor.size.longest_edge) == (
        3136,
        12845056,
    )


def test_torchvision_free_processor_pickles(built: dict[str, Path]) -> None:
    import pickle

    loaded = processor.load_processor_without_torchvision(built["tiny-qwen-image-edit"] / "processor")
    clone = pickle.loads(pickle.dumps(loaded))
    assert type(clone) is processor.TorchvisionFreeQwen2VLProcessor
    assert clone.tokenizer("кот")["input_ids"] == loaded.tokenizer("кот")["input_ids"]


def test_importing_tiny_stays_light() -> None:
    code = (
        "import sys, imagestudio.models.tiny; "
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'tokenizers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    # pytest's `pythonpath` setting does not reach child processes: hand them the source tree.
    src = str(Path(tiny.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


# ------------------------------------------------------------------------------------- inference


def test_z_image_generates_reproducibly_in_bf16(z_pipe) -> None:
    import torch

    def run() -> np.ndarray:
        result = z_pipe(
            prompt="кот в шляпе",
            height=64,
            width=64,
            num_inference_steps=2,
            guidance_scale=0.0,
            generator=torch.Generator("cpu").manual_seed(7),
        )
        [image] = result.images
        assert image.size == (64, 64)
        return np.asarray(image)

    first, second = run(), run()
    assert np.array_equal(first, second)
    assert first.std() > 0  # random weights give noise, but not a flat image


def test_z_image_loads_in_float32(built: dict[str, Path]) -> None:
    import torch
    from diffusers import ZImagePipeline

    pipe = ZImagePipeline.from_pretrained(built["tiny-z-image"], dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.transformer.dtype == torch.float32
    out = pipe(
        "a cat",
        height=32,
        width=32,
        num_inference_steps=1,
        guidance_scale=0.0,
        generator=torch.Generator("cpu").manual_seed(0),
        output_type="np",
    ).images
    assert out.shape == (1, 32, 32, 3)
    assert np.isfinite(out).all()


def test_qwen_edit_two_references_with_true_cfg(qwen_pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from diffusers.pipelines.qwenimage import pipeline_qwenimage_edit_plus as edit_module
    from PIL import Image

    # The pipeline resizes every reference to these module constants (~1024² for the VAE, 384² for the
    # vision encoder) whatever output size is asked for: ~4 s per reference even on the tiny model. The
    # app makes the reference area a setting; here the constants are patched for speed.
    monkeypatch.setattr(edit_module, "VAE_IMAGE_SIZE", 64 * 64)
    monkeypatch.setattr(edit_module, "CONDITION_IMAGE_SIZE", 64 * 64)

    rng = np.random.default_rng(0)
    references = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    assert qwen_pipe.transformer.dtype == torch.bfloat16

    def run() -> np.ndarray:
        result = qwen_pipe(
            image=references,
            prompt="Picture 1 wears the hat from Picture 2: кот в шляпе",
            negative_prompt=" ",
            true_cfg_scale=4.0,
            num_inference_steps=2,
            height=64,
            width=64,
            generator=torch.Generator("cpu").manual_seed(7),
        )
        [image] = result.images
        assert image.size == (64, 64)
        return np.asarray(image)

    first = run()
    assert first.std() > 0
    assert np.array_equal(first, run())


# ------------------------------------------------------------------------------ ensure_tiny_model


def fake_builder(calls: list[Path]) -> Callable[[Path], Path]:
    def build(dest: Path) -> Path:
        calls.append(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "weights.safetensors").write_bytes(b"x")
        (dest / tiny.MODEL_INDEX).write_text("{}", encoding="utf-8")
        return dest

    return build


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".building"))


def test_ensure_builds_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []
    monkeypatch.setitem(tiny.TINY_BUILDERS, "tiny-z-image", fake_builder(calls))
    dest = tmp_path / "models" / "tiny-z-image"
    assert tiny.ensure_tiny_model("tiny-z-image", dest) == dest
    assert tiny.ensure_tiny_model("tiny-z-image", dest) == dest
    assert len(calls) == 1
    assert calls[0].parent == dest.parent  # built beside dest, so the rename stays on one filesystem
    assert (dest / tiny.MODEL_INDEX).is_file()
    assert leftovers(dest.parent) == []


def test_ensure_loser_of_a_race_discards_its_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "tiny-z-image"
    winner = fake_builder([])

    def slow_loser(staging: Path) -> Path:
        winner(dest)  # another process finishes first while this one is still building
        (dest / "winner").write_text("", encoding="utf-8")
        return fake_builder([])(staging)

    monkeypatch.setitem(tiny.TINY_BUILDERS, "tiny-z-image", slow_loser)
    assert tiny.ensure_tiny_model("tiny-z-image", dest) == dest
    assert (dest / "winner").is_file()
    assert leftovers(tmp_path) == []


def test_ensure_failed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(staging: Path) -> Path:
        (staging / "half-written").write_text("", encoding="utf-8")
        raise RuntimeError("boom")

    monkeypatch.setitem(tiny.TINY_BUILDERS, "tiny-z-image", broken)
    with pytest.raises(RuntimeError, match="boom"):
        tiny.ensure_tiny_model("tiny-z-image", tmp_path / "tiny-z-image")
    assert list(tmp_path.iterdir()) == []


def test_ensure_replaces_an_empty_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tiny.TINY_BUILDERS, "tiny-z-image", fake_builder([]))
    dest = tmp_path / "tiny-z-image"
    dest.mkdir()
    tiny.ensure_tiny_model("tiny-z-image", dest)
    assert (dest / tiny.MODEL_INDEX).is_file()


def test_ensure_rejects_unknown_ids(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny-qwen-image-edit, tiny-z-image"):
        tiny.ensure_tiny_model("z-image-turbo", tmp_path / "x")
