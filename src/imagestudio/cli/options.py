"""Options shared by more than one command (beyond those of :mod:`imagestudio.cli.app`)."""

from __future__ import annotations

from typing import Annotated

import typer

LoraOption = Annotated[
    list[str] | None,
    typer.Option(
        "--lora",
        help="LoRA as PATH_OR_REPO[:SCALE] (.safetensors file or folder, or a hub repo already in the "
        "Hugging Face cache); repeatable.",
    ),
]

WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Weight variant: auto (default: models.<id>.weights in config.yaml), bf16, or a GGUF/SDNQ "
        "variant such as gguf-q4_k_m or sdnq-uint4 (`imagestudio models list` names them).",
    ),
]
