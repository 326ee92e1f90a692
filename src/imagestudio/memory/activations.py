"""Activation memory as a function of tokens and pixels: the formula the memory plan uses.

Every coefficient below is a *measurement of tensor bytes*, not a guess: :func:`imagestudio.memory.trace.
peak_tensor_bytes` ran each real component (built from the stored real configs, bf16) on the meta device at
several sizes and recorded the peak bytes of the tensors the forward pass allocated, with attention
accounted as flash / memory-efficient SDPA does it (no S×S matrix). Across 512² to 2048², 1–3 references
and 32–512 text tokens the peaks are linear in tokens (or pixels) to within 1 %, so:

* transformer, one denoising call:  ``bytes = transformer_bytes_per_token × tokens × batch``
  (Z-Image: tokens = (W/16)·(H/16) + caption tokens ≤ 512; batch 2 when guidance > 0 since the pipeline
  batches CFG. Qwen edit: tokens = (W/16)·(H/16) + 4096 per reference (each is encoded at ~1024² area) +
  text tokens; true CFG runs the two passes one after the other, so batch stays 1);
* text encoder: ``bytes = text_encoder_bytes_per_token × tokens`` (with all hidden states kept, as the
  pipelines ask; Qwen2.5-VL also computes the LM head's logits over the prompt);
* VAE: ``bytes = bytes_per_pixel × W × H`` to decode the output or encode one reference; with tiling, a
  constant (one tile) plus a little per pixel.

``tests/memory/test_activations.py`` re-runs the tracer and fails if the installed diffusers/transformers
drift from these numbers. What the tracer cannot see — the CUDA context, cuBLAS/cuDNN workspaces,
allocator rounding — is covered by :data:`KERNEL_MARGIN`, :data:`CUDA_CONTEXT_BYTES` and the user's
``device.vram_reserve_gb``; those allowances are estimates until measured on a GPU (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Extra fraction on top of traced tensor bytes for kernel workspaces (cuDNN convolution algorithms,
#: cuBLAS) and the caching allocator's rounding. An allowance, not a measurement.
KERNEL_MARGIN = 0.15

#: Accelerator memory the CUDA context and libraries take outside torch's allocator. An allowance.
CUDA_CONTEXT_BYTES = 512 * 1024**2

#: Host memory of the Python process itself (interpreter, torch, CUDA libraries). An allowance.
PROCESS_RAM_BYTES = 2 * 1024**3

#: Each reference costs the Qwen2.5-VL vision tower a few hundred patches at ~384² area; its activations
#: were not traced (the vision tower does not run on meta tensors). An allowance.
VISION_TOWER_BYTES_PER_IMAGE = 128 * 1024**2


@dataclass(frozen=True)
class ActivationModel:
    """Traced coefficients for one model family, in bytes at bf16 compute."""

    transformer_bytes_per_token: int
    text_encoder_bytes_per_token: int
    vae_decode_bytes_per_pixel: int
    vae_encode_bytes_per_pixel: int
    #: Tiled decode/encode: (constant bytes, bytes per output pixel).
    vae_tiled_decode: tuple[int, int]
    vae_tiled_encode: tuple[int, int]
    #: Most text tokens the pipeline feeds its text encoder (Z-Image pads to at most 512).
    max_text_tokens: int
    #: Whether guidance batches the conditional and unconditional passes (doubling activations).
    cfg_batches: bool
    #: VAE tile edge in pixels the plan sets when tiling is on (None: the class default).
    vae_tile_pixels: int | None


ACTIVATIONS: dict[str, ActivationModel] = {
    # Traced on ZImageTransformer2DModel (dim 3840): 121,360–121,653 B/token over 1,536–16,896 tokens;
    # Qwen3Model (hidden 2560, 37 hidden states kept): 400,904 B/token; FLUX AutoencoderKL: decode
    # 1,536 B/px, encode 1,280 B/px at every size; tiled with 512-px tiles: 408 MB at 1024², 442 MB at 2048².
    "z-image": ActivationModel(
        transformer_bytes_per_token=121_700,
        text_encoder_bytes_per_token=400_904,
        vae_decode_bytes_per_pixel=1_536,
        vae_encode_bytes_per_pixel=1_280,
        vae_tiled_decode=(397_000_000, 11),
        vae_tiled_encode=(340_000_000, 11),
        max_text_tokens=512,
        cfg_batches=True,
        vae_tile_pixels=512,
    ),
    # Traced on QwenImageTransformer2DModel (60 × 3072, zero_cond_t): 101,748–103,343 B/token over 4,296–
    # 17,084 tokens; Qwen2_5_VLForConditionalGeneration text path with logits: 569,344 B/token;
    # AutoencoderKLQwenImage: decode 3,458–3,462 B/px, encode 1,927–1,931 B/px; tiled (256-px tiles, the
    # class default): decode 237 MB at 1024², 268 MB at 2048²; encode 128 / 134 MB.
    "qwen-image-edit": ActivationModel(
        transformer_bytes_per_token=103_400,
        text_encoder_bytes_per_token=569_344,
        vae_decode_bytes_per_pixel=3_462,
        vae_encode_bytes_per_pixel=1_931,
        vae_tiled_decode=(227_000_000, 10),
        vae_tiled_encode=(126_000_000, 2),
        max_text_tokens=512,
        cfg_batches=False,
        vae_tile_pixels=None,
    ),
}

#: The pipelines' VAE scale (8) times the transformer's patch size (2): one token per 16×16 pixels.
PIXELS_PER_TOKEN_SIDE = 16
#: Qwen2.5-VL merges 2×2 patches of 14 px: one text-side token per 28×28 pixels of a reference.
VL_PIXELS_PER_TOKEN_SIDE = 28


@dataclass(frozen=True)
class Workload:
    """What one job asks of the models, as far as memory is concerned."""

    width: int
    height: int
    #: Images the job encodes with the VAE (Qwen edit references; img2img/inpaint's init image).
    input_images: int = 0
    #: Pixel area each input image is encoded at (Qwen edit: ~1024²; img2img: the output size).
    input_area: int = 0
    #: Pixel area each reference is shown to the vision-language encoder at (Qwen edit: ~384²).
    condition_area: int = 0
    cfg: bool = False
    steps: int = 8
    #: Models beside the pipeline (see :mod:`.extras`): a control image's ControlNet, on the accelerator
    #: while denoising; a hires pass's upscaler, after the first pass is decoded. Bytes; 0 = not used.
    controlnet_bytes: int = 0
    upscaler_bytes: int = 0
    #: A control-map detector (depth), run before denoising and dropped. Bytes; 0 = not used.
    detector_bytes: int = 0

    @property
    def image_tokens(self) -> int:
        return (self.width // PIXELS_PER_TOKEN_SIDE) * (self.height // PIXELS_PER_TOKEN_SIDE)

    def describe(self) -> str:
        refs = f", {self.input_images} input image(s)" if self.input_images else ""
        extras = ", ControlNet" if self.controlnet_bytes else ""
        extras += ", hires upscaler" if self.upscaler_bytes else ""
        extras += ", map detector" if self.detector_bytes else ""
        return f"{self.width}×{self.height}{refs}{', CFG' if self.cfg else ''}, {self.steps} steps{extras}"


@dataclass(frozen=True)
class PhaseActivations:
    """Peak activation bytes of each phase of one job (at the compute dtype, margin included)."""

    text_encode: int
    vae_encode: int
    denoise: int
    vae_decode: int


def text_tokens(model: ActivationModel, workload: Workload) -> int:
    """Tokens through the text encoder: the prompt (at most) plus each reference's vision tokens."""
    vision = 0
    if workload.condition_area:
        vision = workload.condition_area // VL_PIXELS_PER_TOKEN_SIDE**2
    return model.max_text_tokens + workload.input_images * vision


def transformer_tokens(model: ActivationModel, workload: Workload) -> int:
    """Sequence length of one denoising call."""
    references = 0
    if workload.condition_area:  # edit: references join the image stream at their VAE area
        references = workload.input_images * (workload.input_area // PIXELS_PER_TOKEN_SIDE**2)
    return workload.image_tokens + references + text_tokens(model, workload)


def phase_activations(
    model: ActivationModel, workload: Workload, *, tiled: bool, dtype_bytes: int = 2
) -> PhaseActivations:
    """Peak activation bytes per phase; ``dtype_bytes`` scales the bf16 coefficients (4 for float32)."""
    scale = (dtype_bytes / 2) * (1 + KERNEL_MARGIN)
    batch = 2 if (workload.cfg and model.cfg_batches) else 1
    pixels = workload.width * workload.height
    text = model.text_encoder_bytes_per_token * text_tokens(model, workload)
    if workload.condition_area:
        text += workload.input_images * VISION_TOWER_BYTES_PER_IMAGE
    if not workload.input_images:
        encode = 0.0
    elif tiled:
        encode = min(
            model.vae_encode_bytes_per_pixel * workload.input_area,
            model.vae_tiled_encode[0] + model.vae_tiled_encode[1] * workload.input_area,
        )
    else:
        encode = model.vae_encode_bytes_per_pixel * workload.input_area
    if tiled:
        decode = min(
            model.vae_decode_bytes_per_pixel * pixels,
            model.vae_tiled_decode[0] + model.vae_tiled_decode[1] * pixels,
        )
    else:
        decode = model.vae_decode_bytes_per_pixel * pixels
    denoise = model.transformer_bytes_per_token * transformer_tokens(model, workload) * batch
    return PhaseActivations(
        text_encode=int(text * scale),
        vae_encode=int(encode * scale),
        denoise=int(denoise * scale),
        vae_decode=int(decode * scale),
    )
