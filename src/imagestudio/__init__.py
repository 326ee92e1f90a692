"""imagestudio: a local studio for Z-Image-Turbo and Qwen-Image-Edit-2511 on consumer GPUs.

Importing the package is cheap on purpose: torch and diffusers are imported only by the code paths
that run a model, so ``imagestudio --help`` answers instantly.
"""

__version__ = "0.1.0"
