"""The plain-diffusers script the cold-start benchmark compares ``imagestudio generate`` with.

Deliberately minimal — what a person would write from the model card: load the folder in bfloat16, put
it on the GPU if there is one, make one image with a CPU generator, save it. Run as a file:
``python plain_generate.py FOLDER OUT.png PROMPT SIDE STEPS SEED``.
"""

import sys

import torch
from diffusers import ZImagePipeline


def main() -> None:
    folder, out, prompt, side, steps, seed = sys.argv[1:7]
    pipe = ZImagePipeline.from_pretrained(folder, torch_dtype=torch.bfloat16)
    if torch.cuda.is_available():
        pipe.to("cuda")
    image = pipe(
        prompt,
        height=int(side),
        width=int(side),
        num_inference_steps=int(steps),
        guidance_scale=0.0,
        generator=torch.Generator("cpu").manual_seed(int(seed)),
    ).images[0]
    image.save(out)


if __name__ == "__main__":
    main()
