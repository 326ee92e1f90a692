"""Seed variety for Z-Image: per-seed noise on the text conditioning.

Z-Image-Turbo is distilled so hard that the starting noise decides little: changing the seed barely
changes the picture (Tongyi-MAI/Z-Image#16, #27). The prompt embeddings decide most of it, so *variety*
perturbs them per seed: the pipeline's own ``encode_prompt`` runs once per job, and each image gets its
embeddings plus Gaussian noise of standard deviation ``variety x std(embeddings)``, drawn from a CPU
generator seeded by the image's seed. The same seed and variety therefore give the same pixels; another
seed gives other noise on top of other latents.

Variety 0 (the default) never reaches this module: the pipeline is called exactly as before, with the
prompt text, so "off" keeps the previous pixels bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: The highest variety: noise as strong as the embeddings' own spread.
MAX_VARIETY = 1.0
#: Mixed into the image's seed so the embedding noise is not the same stream as the latent noise.
_NOISE_SEED_SALT = 0x5EED_7A21


def perturbed(embeds: list[torch.Tensor], variety: float, seed: int) -> list[torch.Tensor]:
    """``embeds`` (one tensor per prompt, as Z-Image's ``encode_prompt`` returns) with seeded noise.

    The noise is drawn on the CPU in float32 (the same numbers on every device and dtype) and scaled by
    each tensor's own standard deviation, so ``variety`` means the same for any model size.
    """
    import torch

    generator = torch.Generator("cpu").manual_seed((seed ^ _NOISE_SEED_SALT) % 2**63)
    result = []
    for tensor in embeds:
        reference = tensor.detach().float()
        noise = torch.randn(reference.shape, generator=generator, dtype=torch.float32)
        scale = variety * float(reference.std())
        result.append((reference + noise.to(reference.device) * scale).to(tensor.dtype))
    return result


def variety_call(pipe: Any, variety: float) -> Callable[..., Any]:
    """A stand-in for ``pipe(...)`` that encodes the prompt once and perturbs it per image's seed.

    ``pipe`` is a Z-Image text-to-image, img2img or inpaint pipeline.

    It receives the same keyword arguments :func:`~imagestudio.engine.pipeline_calls.run_pipeline` passes
    to a pipeline; the image's seed is read back from its generator (``initial_seed``), so the
    one-call-per-seed loop needs no change.
    """
    encoded: dict[str, Any] = {}

    def call(**kwargs: Any) -> Any:
        prompt = kwargs.pop("prompt")
        negative = kwargs.pop("negative_prompt", None)
        guided = float(kwargs.get("guidance_scale") or 0.0) > 0.0
        if not encoded:
            import torch

            # One text-encoder run per job, however many images: the per-image part is only the noise.
            # (The pipeline's own call runs under no_grad; outside it, so must the encoding.)
            with torch.no_grad():
                positive, negatives = pipe.encode_prompt(
                    prompt=prompt,
                    device=pipe._execution_device,
                    do_classifier_free_guidance=guided,
                    negative_prompt=negative,
                )
            encoded["positive"], encoded["negative"] = positive, negatives
        seed = int(kwargs["generator"].initial_seed())
        if guided:
            # With CFG on, the negative side stays as encoded: only the subject of the prompt varies.
            kwargs["negative_prompt_embeds"] = encoded["negative"]
        return pipe(prompt_embeds=perturbed(encoded["positive"], variety, seed), **kwargs)

    return call
