"""Tiny random-weight versions of both pipelines, for tests, CI and offline demos.

Nothing here may be a mock: each tiny pipeline is built from the *real* diffusers/transformers classes at a
tiny configuration, saved with ``save_pretrained`` and loaded back through the same ``from_pretrained`` path
as the real models (the rule diffusers' own pipeline tests follow). A tiny folder therefore has the real
folder's layout and ``model_index.json``, and any loader bug shows up with it too.

Every machine must build byte-identical files, so that a test failing on one machine fails on all and a
cached folder never depends on who built it. Two things make that true:

* the tokenizer's BPE training runs over a fixed corpus and its vocabulary is renumbered canonically;
* every saved weight is re-drawn from a seeded CPU generator using only uniform draws and exactly rounded
  arithmetic (:func:`~imagestudio.models.random_weights.redraw_portably`; the components are built where
  every random-weight model is, :mod:`imagestudio.models.random_weights`).

Importing this module is cheap: torch, diffusers and transformers are imported inside the functions, because
the CLI imports it and must stay light.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.models.configs import COMPONENTS
from imagestudio.models.processor import (
    QWEN_VL_PIXELS,
    REAL_PROCESSOR_CLASS,
    torchvision_free_processor_class,
)
from imagestudio.models.random_weights import random_component

if TYPE_CHECKING:
    from transformers import Qwen2Tokenizer

__all__ = [
    "QWEN_EDIT_SYSTEM_PROMPT",
    "TINY_BUILDERS",
    "build_tiny_qwen_edit",
    "build_tiny_tokenizer",
    "build_tiny_z_image",
    "ensure_tiny_model",
    "tiny_qwen_edit_configs",
    "tiny_z_image_configs",
]

MODEL_INDEX = "model_index.json"

#: The system prompt of ``QwenImageEditPlusPipeline.prompt_template_encode`` (diffusers 0.42.1). The
#: pipeline drops a fixed number of leading prompt tokens (``prompt_template_encode_start_idx`` = 64),
#: which is the length of the template's prefix under the real Qwen tokenizer: the 58 pre-tokenizer pieces
#: of ``"system\n" + this prompt``, each one real token, plus ``<|im_start|>``, ``<|im_end|>``, ``\n``,
#: ``<|im_start|>``, ``user``, ``\n``. Training the tiny BPE on this exact text (and on ``user``) merges
#: each of those pieces into one token, so the tiny tokenizer also gives 64 and the tiny model drops
#: exactly the system prompt, as the real one does.
#: ``tests/models/test_tiny.py`` checks this against the installed pipeline's own template.
QWEN_EDIT_SYSTEM_PROMPT = (
    "Describe the key features of the input image (color, shape, size, texture, objects, background), "
    "then explain how the user's text instruction should alter or modify the image. Generate a new image "
    "that meets the user's requirements while maintaining consistency with the original input where "
    "appropriate."
)

# The tokenizer's training corpus. Changing anything here changes every tiny model's files (and thus the
# hashes of cached folders); keep it fixed. English and Russian so that common words of both languages
# become single tokens; any other text still encodes, byte by byte.
_TOKENIZER_CORPUS: tuple[str, ...] = (
    "system\n" + QWEN_EDIT_SYSTEM_PROMPT,
    "user\nPicture 1: Picture 2: Picture 3:",
    "assistant\n",
    "A cat in a hat sits on a red chair next to the window.",
    "A photo of a small dog running on the beach at sunset, high detail.",
    "Replace the background with a snowy mountain landscape and keep the person unchanged.",
    "Make the sky blue, add white clouds, and remove the text from the sign.",
    "A watercolor painting of an old town street with lanterns in the evening.",
    "кот в шляпе",
    "Кот в шляпе сидит на красном стуле у окна.",
    "Фотография маленькой собаки, бегущей по пляжу на закате.",
    "Замени фон на заснеженные горы и оставь человека без изменений.",
    "Сделай небо голубым, добавь белые облака и убери надпись с вывески.",
    "Акварельный рисунок старой улицы с фонарями вечером.",
)

# Qwen's added tokens, in the order (and so with the relative ids) of the Qwen2.5-VL / Qwen3 tokenizers.
# ``<|endoftext|>`` comes first because Qwen2Tokenizer adds it itself as the unk/pad token.
_QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Plain (non-special) added tokens, as in Qwen3: decoding keeps them even with skip_special_tokens.
_QWEN_PLAIN_ADDED_TOKENS: tuple[str, ...] = ("<think>", "</think>")

# A minimal Qwen3-style template. Z-Image calls ``apply_chat_template(..., add_generation_prompt=True,
# enable_thinking=True)``; for a single user message this renders exactly what Qwen3's full template does
# (an open assistant turn; ``enable_thinking=False`` inserts the empty think block, as Qwen3 does).
_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

# Seeds per family and component: fixed forever (changing one changes that component's files).
_SEEDS: dict[str, dict[str, int]] = {
    "z-image": {"transformer": 1001, "vae": 1002, "text_encoder": 1003},
    "qwen-image-edit": {"transformer": 2001, "vae": 2002, "text_encoder": 2003},
}

# The real Qwen-Image family scheduler config (Qwen/Qwen-Image*, scheduler/scheduler_config.json; the
# same values are reproduced verbatim by ai-toolkit and SimpleTuner for Qwen-Image-Edit). Dynamic,
# exponential time shift with a terminal sigma of 0.02 rather than FLUX's 1.15 max shift.
_QWEN_SCHEDULER_CONFIG: dict[str, Any] = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "invert_sigmas": False,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "stochastic_sampling": False,
    "time_shift_type": "exponential",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}


# --------------------------------------------------------------------------------------------- tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table, which Qwen's byte-level BPE uses.

    Its iteration order (printable bytes first) is the order of the first 256 ids in Qwen's vocabulary.
    """
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


@functools.cache
def _tiny_vocab_and_merges() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """Train the tiny byte-level BPE and renumber it canonically (cached: it never changes).

    The pre-tokenizer is Qwen2's own (its split regex, then byte-level mapping), so the merges are learned
    on the same pieces the real tokenizer produces. The trainer is seeded with all 256 byte symbols, so
    every string encodes without unknowns. Training runs until no pair is left, so every word of the
    corpus ends up as one token. Ids are then reassigned the way Qwen's vocabulary is laid out: the 256
    byte symbols in GPT-2 order, then one id per merge in merge order; the result depends only on the
    merge list, not on how the trainer numbered things internally.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    byte_symbols = list(_bytes_to_unicode().values())
    trainer = trainers.BpeTrainer(
        vocab_size=100_000,  # never reached: training stops when no pair is left to merge
        min_frequency=1,
        show_progress=False,
        initial_alphabet=byte_symbols,
        special_tokens=[],
    )
    tokenizer.train_from_iterator(list(_TOKENIZER_CORPUS), trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = tuple(tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"])

    vocab: dict[str, int] = {symbol: i for i, symbol in enumerate(byte_symbols)}
    for left, right in merges:
        merged = left + right
        if merged not in vocab:
            vocab[merged] = len(vocab)
    trained = set(model["vocab"])
    if trained != set(vocab):
        raise RuntimeError("tiny tokenizer: trained vocabulary does not match its merges")
    return tuple(vocab.items()), merges  # type: ignore[return-value]


def build_tiny_tokenizer() -> Qwen2Tokenizer:
    """A real ``Qwen2Tokenizer`` over the tiny BPE, with Qwen's added tokens and a Qwen3-style template.

    ``<|im_end|>`` is the end-of-sequence token and ``<|endoftext|>`` the pad token, as in Qwen2.5-VL and
    Qwen3.
    """
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab_items, merges = _tiny_vocab_and_merges()
    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab_items),
        # Pairs, as the tokenizers backend takes them (transformers annotates the argument as strings).
        merges=[(left, right) for left, right in merges],  # type: ignore[misc]
        # eos becomes <|im_end|> below: passing it here would add it before <|endoftext|>.
        unk_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        chat_template=_CHAT_TEMPLATE,
    )
    tokenizer.add_tokens(
        [AddedToken(t, special=True, normalized=False) for t in _QWEN_SPECIAL_TOKENS], special_tokens=True
    )
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in _QWEN_PLAIN_ADDED_TOKENS])
    expected = len(vocab_items)
    for offset, token in enumerate(_QWEN_SPECIAL_TOKENS + _QWEN_PLAIN_ADDED_TOKENS):
        if tokenizer.convert_tokens_to_ids(token) != expected + offset:
            raise RuntimeError(f"tiny tokenizer: {token} did not get id {expected + offset}")
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def _token_id(tokenizer: Qwen2Tokenizer, token: str) -> int:
    value = tokenizer.convert_tokens_to_ids(token)
    if not isinstance(value, int):
        raise RuntimeError(f"tiny tokenizer has no id for {token}")
    return value


# ------------------------------------------------------------------------------------------ components


def _tiny_components(family: str, configs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The three components at ``configs``, float32, every weight redrawn portably from its fixed seed."""
    import torch

    return {
        name: random_component(family, name, configs[name], dtype=torch.float32, seed=_SEEDS[family][name])
        for name in COMPONENTS
    }


def _tiny_configs(model_id: str, tokenizer: Qwen2Tokenizer) -> dict[str, dict[str, Any]]:
    """The component configs in ``tiny_configs/<model_id>.json``, with the tokenizer's numbers filled in.

    The file says ``"{vocab_size}"`` for the tokenizer's size and ``"{token:<|im_end|>}"`` for a token's id:
    those depend on the trained tokenizer, everything else is fixed data.
    """
    from importlib import resources

    text = (resources.files("imagestudio.models") / "tiny_configs" / f"{model_id}.json").read_text("utf-8")

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: fill(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fill(item) for item in value]
        if value == "{vocab_size}":
            return len(tokenizer)
        if isinstance(value, str) and value.startswith("{token:") and value.endswith("}"):
            return _token_id(tokenizer, value[len("{token:") : -1])
        return value

    configs: dict[str, dict[str, Any]] = fill(json.loads(text))
    return configs


# ------------------------------------------------------------------------------------------ Z-Image


def tiny_z_image_configs(tokenizer: Qwen2Tokenizer) -> dict[str, dict[str, Any]]:
    """The tiny Z-Image's component configs (shared notes, "offline tiny models").

    Transformer dim 32, 2 layers + 1 refiner layer, 2 heads, head dim 16 split as RoPE axes [8, 4, 4],
    ``cap_feat_dim`` 32 = the text encoder's hidden size, ``axes_lens[0]`` (1024) above the padded prompt
    (at most 512 tokens); a FLUX-style ``AutoencoderKL`` with 16 latent
    channels, the real scaling/shift factors and four 16-channel blocks (the real 8x downscale); a 2-layer
    ``Qwen3Model`` text encoder over ``tokenizer``'s vocabulary.
    """
    return _tiny_configs("tiny-z-image", tokenizer)


def build_tiny_z_image(dest: Path) -> Path:
    """Build a tiny ``ZImagePipeline`` (~2 MB, float32 weights) into ``dest`` and return ``dest``.

    The components of :func:`tiny_z_image_configs`, with the real
    ``FlowMatchEulerDiscreteScheduler(shift=3.0)``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    dest = Path(dest)
    tokenizer = build_tiny_tokenizer()
    components = _tiny_components("z-image", tiny_z_image_configs(tokenizer))
    # To a type checker diffusers' classes are untyped placeholders (see imagestudio.models.pipeline).
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False)
    pipe: Any = ZImagePipeline(scheduler=scheduler, tokenizer=tokenizer, **components)
    pipe.save_pretrained(dest, safe_serialization=True)
    return dest


# ------------------------------------------------------------------------------------- Qwen edit


def tiny_qwen_edit_configs(tokenizer: Qwen2Tokenizer) -> dict[str, dict[str, Any]]:
    """The tiny Qwen edit model's component configs (shared notes).

    Transformer 2 layers, 2 heads x 16, ``joint_attention_dim`` 32, RoPE axes (8, 4, 4),
    ``zero_cond_t=True`` (Qwen-Image-Edit-2511's one architectural change, so the tiny model runs that
    code path), ``in_channels`` 64 = 4 x the VAE's ``z_dim``; a Wan-style ``AutoencoderKLQwenImage`` with
    base dim 8 and three downsampling stages (the real 8x); a ``Qwen2_5_VLForConditionalGeneration`` with a
    2-layer, hidden-32 text model (M-RoPE sections [2, 3, 3] = half the head dim) and a 2-block, hidden-16
    vision tower projecting to 32, over ``tokenizer``'s vocabulary.
    """
    return _tiny_configs("tiny-qwen-image-edit", tokenizer)


def build_tiny_qwen_edit(dest: Path) -> Path:
    """Build a tiny ``QwenImageEditPlusPipeline`` (~3.5 MB, float32 weights) into ``dest``; return ``dest``.

    The components of :func:`tiny_qwen_edit_configs` with the real scheduler config.
    ``model_index.json`` names ``Qwen2VLProcessor`` exactly as the real repository does.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImageEditPlusPipeline
    from transformers import Qwen2VLImageProcessorPil

    dest = Path(dest)
    tokenizer = build_tiny_tokenizer()
    components = _tiny_components("qwen-image-edit", tiny_qwen_edit_configs(tokenizer))
    image_processor = Qwen2VLImageProcessorPil(
        size=dict(QWEN_VL_PIXELS), patch_size=14, temporal_patch_size=2, merge_size=2
    )
    processor = torchvision_free_processor_class()(
        image_processor=image_processor, tokenizer=build_tiny_tokenizer(), chat_template=_CHAT_TEMPLATE
    )
    # To a type checker diffusers' classes are untyped placeholders (see imagestudio.models.pipeline).
    scheduler = FlowMatchEulerDiscreteScheduler(**_QWEN_SCHEDULER_CONFIG)
    pipe: Any = QwenImageEditPlusPipeline(
        scheduler=scheduler, tokenizer=tokenizer, processor=processor, **components
    )
    # Name the real class, not the subclass, so tiny and real folders read the same to any loader.
    pipe.register_to_config(processor=("transformers", REAL_PROCESSOR_CLASS))
    pipe.save_pretrained(dest, safe_serialization=True)
    return dest


# ---------------------------------------------------------------------------------------- registry


TINY_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "tiny-z-image": build_tiny_z_image,
    "tiny-qwen-image-edit": build_tiny_qwen_edit,
}


def _is_complete(folder: Path) -> bool:
    # A folder only ever appears under its final name by an atomic rename of a finished build, so the
    # marker's presence means every file is there.
    return (folder / MODEL_INDEX).is_file()


def ensure_tiny_model(model_id: str, dest: Path) -> Path:
    """Make sure the tiny model ``model_id`` is built at ``dest``; return ``dest``.

    The build goes into a fresh temporary folder beside ``dest`` (same filesystem) and is renamed into
    place in one step, so ``dest`` is either absent or complete, never half-written: a crash mid-build
    leaves only a stray temporary folder. When two processes race, both build, the first rename wins and
    the loser, finding ``dest`` complete, discards its copy (the builds are byte-identical anyway).
    """
    try:
        builder = TINY_BUILDERS[model_id]
    except KeyError:
        known = ", ".join(sorted(TINY_BUILDERS))
        raise ValueError(f"unknown tiny model {model_id!r}; known: {known}") from None
    dest = Path(dest)
    if _is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would survive the rename; os.mkdir honours the umask.
    staging = dest.parent / f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.building"
    staging.mkdir()
    try:
        from imagestudio.models.quiet import quiet_library_progress

        quiet_library_progress()
        builder(staging)
        if dest.is_dir() and not any(dest.iterdir()):
            # An empty placeholder (e.g. made by a user) would block the rename on some platforms.
            with contextlib.suppress(OSError):
                dest.rmdir()
        try:
            staging.rename(dest)
        except OSError:
            if not _is_complete(dest):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
