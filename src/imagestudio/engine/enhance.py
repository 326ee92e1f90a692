"""*Improve prompt*: rewrite a short prompt into a detailed one with a language model already on disk.

No extra download and no cloud key: both pipelines carry a chat model as their text encoder.

* Z-Image-Turbo's text encoder is the stock Qwen3-4B chat model (``text_encoder/config.json`` names
  ``Qwen3ForCausalLM`` with tied embeddings). diffusers loads it as the bare ``Qwen3Model``; the same files
  load as a causal LM whose output head *is* the embedding matrix, so nothing is missing.
* Qwen-Image-Edit-2511's text encoder is ``Qwen2_5_VLForConditionalGeneration`` (Qwen2.5-VL-7B-Instruct,
  output head included): it rewrites an edit instruction while looking at the pictures.

Where the weights come from: when the resident pipeline (see :mod:`imagestudio.engine.manager`) is the
requested model, its text encoder is borrowed as it sits, placed by its memory plan, so no second copy is
ever made. Otherwise the text encoder is loaded alone (a fraction of the pipeline) and dropped after the
rewrite; on CUDA it is placed by accelerate's ``device_map="auto"`` within the memory that is free now
minus ``device.vram_reserve_gb``, so it never pushes the accelerator (or a resident pipeline) out of
memory, spilling layers to RAM instead. Both paths hold the manager's lock, so a pipeline cannot be
switched or unloaded under the rewrite.

The prompt texts and the cleaning of the answer are :mod:`imagestudio.engine.enhance_text`; the encoder
as a chat model is :mod:`imagestudio.engine.chat_model`.

Generation is bounded three ways: ``max_new_tokens``, a wall-clock limit and the job's cancel flag (a
``StoppingCriteria`` checks the last two between tokens). The output is made safe whatever the model says
(the tiny test models say random tokens): decoded without special tokens, Qwen3 ``<think>`` blocks and
preambles removed, one paragraph, bounded length; an unusable answer falls back to the user's prompt with
a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from imagestudio.engine.chat_model import ChatModel, causal_lm_over, input_device, load_processor
from imagestudio.engine.enhance_text import (
    Language,
    clean_output,
    detect_language,
    last_sentence_end,
    render_chat,
    system_prompt,
    usable,
)
from imagestudio.errors import JobCancelled
from imagestudio.registry import ModelSpec, get_model

if TYPE_CHECKING:
    from PIL import Image

    from imagestudio.config import Settings
    from imagestudio.engine.manager import LoadedModel, ModelManager
    from imagestudio.job_requests import EnhanceRequest

log = logging.getLogger(__name__)

#: Why generation stopped: the model finished, the token budget ran out, or the time limit passed.
StopReason = Literal["finished", "max_tokens", "time_limit"]

# ------------------------------------------------------------------------------------ the result


@dataclass(frozen=True)
class EnhanceResult:
    """A rewrite and how it came about; ``warning`` is a code when the original prompt was kept."""

    prompt: str
    original_prompt: str
    model: str
    seconds: float
    language: Language
    tokens: int
    stopped: StopReason
    #: None, or "enhance_unusable" (the answer was empty or garbage; ``prompt`` is the original).
    warning: str | None = None
    #: Where the weights came from: "resident" (borrowed) or "loaded" (loaded for this rewrite).
    source: str = "loaded"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data.pop("extra")
        return data


# ------------------------------------------------------------------------------------ the enhancer


class PromptEnhancer:
    """Rewrites prompts with the text encoder of a model on disk; one call at a time per manager.

    Runs as a job of its own kind on the studio's queue (``EnhanceRequest``), so it takes its turn with
    image jobs on the one worker that owns the accelerator rather than racing them; the CLI calls it
    in-process like its other commands. Either way the manager's lock is held for the whole rewrite.
    """

    def __init__(self, settings: Settings, manager: ModelManager) -> None:
        self.settings = settings
        self.manager = manager

    def enhance(self, request: EnhanceRequest, cancel: threading.Event | None = None) -> EnhanceResult:
        """Rewrite ``request.prompt`` (a resolved request); raises JobCancelled when ``cancel`` is set."""
        spec = get_model(request.model)
        started = time.perf_counter()
        if cancel is not None and cancel.is_set():
            raise JobCancelled("cancelled")
        with self.manager.hold() as resident:
            chat = self._borrow(resident, spec) or self._load(spec, request.weights)
            try:
                return self._rewrite(chat, spec, request, started, cancel)
            finally:
                if chat.source == "loaded":
                    from imagestudio.engine.manager import free_memory

                    del chat
                    free_memory()

    # -------------------------------------------------------------- where the weights come from

    def _borrow(self, resident: LoadedModel | None, spec: ModelSpec) -> ChatModel | None:
        """The resident pipeline's text encoder as a chat model, when it is the requested model."""
        if resident is None or resident.spec.id != spec.id or resident.pipe is None:
            return None
        pipe = resident.pipe
        encoder = getattr(pipe, "text_encoder", None)
        if encoder is None:
            return None
        device = pipe._execution_device
        if spec.family == "qwen-image-edit":
            processor = pipe.processor
            return ChatModel(encoder, processor.tokenizer, processor, device, "resident")
        return ChatModel(causal_lm_over(encoder), pipe.tokenizer, None, device, "resident")

    def _load(self, spec: ModelSpec, weights: str | None = None) -> ChatModel:
        """The text encoder alone, from the weight variant's folder, placed within the memory free now.

        An SDNQ variant's encoder loads as stored; a variant that runs a quantized encoder over a bf16 one
        (or ``weights`` asking for it) is quantized by SDNQ while it loads, as the pipeline's would be.
        """
        import torch

        from imagestudio.engine.loader import import_sdnq, require_variant_files, shipped_encoder_precision
        from imagestudio.models.quiet import quiet_library_progress
        from imagestudio.models.variants import requested_variant

        quiet_library_progress()
        variant = requested_variant(spec, self.settings, weights)
        folder = require_variant_files(spec, variant, self.settings).pipeline_dir
        dtype = getattr(torch, self.settings.model(spec.id).torch_dtype)
        kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": True, **self._placement()}
        shipped = shipped_encoder_precision(folder)
        if shipped != "bf16" or variant.encoder != "bf16":
            import_sdnq(f"the {variant.encoder} text encoder of {spec.id}")
        if variant.encoder != shipped:
            from imagestudio.models.tiny_variants import sdnq_config

            kwargs["quantization_config"] = sdnq_config(variant.encoder, every_layer=spec.tiny)
        model: Any
        log.info("loading the text encoder of %s alone for a prompt rewrite", spec.id)
        if spec.family == "qwen-image-edit":
            from transformers import Qwen2_5_VLForConditionalGeneration

            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder / "text_encoder", **kwargs)
            processor = load_processor(folder / "processor")
            tokenizer = processor.tokenizer
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            # diffusers saves the encoder as a Qwen3Model; as a causal LM its head is the tied embedding
            # (the real checkpoint says so in its config; saying it here covers copies that do not).
            model = AutoModelForCausalLM.from_pretrained(
                folder / "text_encoder", tie_word_embeddings=True, **kwargs
            )
            tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
            processor = None
        if "device_map" not in kwargs:
            model.to(self.manager.device)
        model.eval()
        return ChatModel(model, tokenizer, processor, input_device(model), "loaded")

    def _placement(self) -> dict[str, Any]:
        """``device_map``/``max_memory`` on CUDA (what is free now minus the reserve); nothing elsewhere."""
        from imagestudio.hardware import available_ram_bytes, cuda_index, free_accelerator_bytes

        device = self.manager.device
        index, free = cuda_index(device), free_accelerator_bytes(device)
        if index is None or free is None:
            return {}
        reserve = int(self.settings.device.vram_reserve_gb * 1024**3)
        return {
            "device_map": "auto",
            "max_memory": {index: max(0, free - reserve), "cpu": available_ram_bytes()},
        }

    # -------------------------------------------------------------- the rewrite

    def _rewrite(
        self,
        chat: ChatModel,
        spec: ModelSpec,
        request: EnhanceRequest,
        started: float,
        cancel: threading.Event | None,
    ) -> EnhanceResult:
        import torch

        budget = request.max_new_tokens
        assert budget is not None, "call resolved() first"
        original = request.prompt.strip()
        language: Language = detect_language(original) if request.language == "auto" else request.language
        images = [self._vl_image(item.image, spec) for item in request.images]
        pictures = "".join(
            f"Picture {n}: <|vision_start|><|image_pad|><|vision_end|>" for n in range(1, len(images) + 1)
        )
        messages = [
            {"role": "system", "content": system_prompt(spec.task, language)},
            {"role": "user", "content": pictures + original},
        ]
        text = render_chat(chat.tokenizer, messages)
        if chat.processor is not None:
            inputs = chat.processor(text=[text], images=images or None, return_tensors="pt")
        else:
            inputs = chat.tokenizer([text], return_tensors="pt")
        inputs = {name: value.to(chat.device) for name, value in inputs.items()}
        prompt_length = int(inputs["input_ids"].shape[1])
        deadline = started + request.time_limit_s
        stopper = stop_criteria(deadline, cancel)
        tokenizer = chat.tokenizer
        with torch.no_grad(), torch.random.fork_rng(devices=_rng_devices(chat.device)):
            torch.manual_seed(request.seed or 0)
            output = chat.model.generate(
                **inputs,
                max_new_tokens=budget,
                # Qwen3's recommended sampling without thinking (also sound for Qwen2.5-VL).
                do_sample=True,
                temperature=0.7,
                top_p=0.8,
                top_k=20,
                repetition_penalty=1.05,
                stopping_criteria=[stopper],
                pad_token_id=tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id,
            )
        if stopper.reason == "cancelled":
            raise JobCancelled("cancelled")
        new_tokens = output[0, prompt_length:]
        count = int(new_tokens.shape[0])
        eos = _eos_ids(chat.model, tokenizer)
        if stopper.reason == "time_limit":
            stopped: StopReason = "time_limit"
        elif count and int(new_tokens[-1]) in eos:
            stopped = "finished"
        else:
            stopped = "max_tokens" if count >= budget else "finished"
        raw = tokenizer.decode(new_tokens, skip_special_tokens=True)
        from imagestudio.job_requests import MAX_PROMPT_CHARS

        rewritten = clean_output(raw, MAX_PROMPT_CHARS)
        if stopped != "finished":
            rewritten = last_sentence_end(rewritten)
        warning = None
        # A rewrite cut off by a limit before it said more than the user did is no improvement either.
        cut_short = stopped != "finished" and len(rewritten.split()) < len(original.split())
        if not usable(rewritten) or cut_short:
            log.warning("the prompt rewrite of %s gave nothing usable; keeping the original prompt", spec.id)
            rewritten, warning = original, "enhance_unusable"
        return EnhanceResult(
            prompt=rewritten,
            original_prompt=original,
            model=spec.id,
            seconds=time.perf_counter() - started,
            language=language,
            tokens=count,
            stopped=stopped,
            warning=warning,
            source=chat.source,
        )

    def _vl_image(self, image: Image.Image, spec: ModelSpec) -> Image.Image:
        """A reference as the edit pipeline shows it to the vision-language encoder (its area, x32)."""
        import math

        area = self.settings.model(spec.id).reference_condition_area or spec.reference_condition_area
        area = area or 384 * 384
        ratio = image.width / image.height
        width = max(32, round(math.sqrt(area * ratio) / 32) * 32)
        height = max(32, round(width / ratio / 32) * 32)
        return image.convert("RGB").resize((width, height))


def stop_criteria(deadline: float, cancel: threading.Event | None) -> Any:
    """A ``StoppingCriteria`` that stops at ``deadline`` (``time.perf_counter`` seconds) or on ``cancel``.

    Its ``reason`` is then "time_limit" or "cancelled" (None while neither happened).
    """
    import torch
    from transformers import StoppingCriteria

    class Deadline(StoppingCriteria):
        def __init__(self) -> None:
            self.reason: str | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
            if cancel is not None and cancel.is_set():
                self.reason = "cancelled"
            elif time.perf_counter() >= deadline:
                self.reason = "time_limit"
            stop = self.reason is not None
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return Deadline()


def _rng_devices(device: Any) -> list[int]:
    import torch

    device = torch.device(device)
    return [device.index or 0] if device.type == "cuda" else []


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    return set(ids) if isinstance(ids, list) else {ids} if ids is not None else set()
