"""HED soft edges: the network of lllyasviel's ControlNet annotator ("HED 1.1", Apache-2.0), its published
checkpoint converted once to safetensors, and the tiny random-weight one.

Why the network is defined here rather than imported: the one library that ships it, controlnet-aux,
imports all twenty of its detectors (timm, scikit-image, mediapipe …; 6.7 s and a page of warnings,
measured here) to give this one class, and loads the checkpoint with an unrestricted ``torch.load``. The
network is five VGG-style blocks of 3×3 convolutions, each with a 1×1 side output; the test suite checks
it, weight for weight, against controlnet-aux's own ``HEDdetector``.

Its only published weights are a pickle (``ControlNetHED.pth`` in ``lllyasviel/Annotators``), and the
studio loads safetensors only. So the download converts it once (:func:`convert_checkpoint`): torch's
restricted unpickler (``weights_only=True``: tensors and plain containers, never an object that runs code;
a pickle that asks for anything else is refused before it is built), every tensor checked against this
network's names and shapes, written as safetensors, the pickle deleted. Loading never touches a pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagestudio.errors import DownloadFailed

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

#: Convolutions per block (the first of each block changes the width); fixed by the architecture.
BLOCK_LAYERS = (2, 2, 3, 3, 3)
#: The released network's widths, and the tiny one's.
REAL_WIDTHS = (64, 128, 256, 512, 512)
TINY_WIDTHS = (4, 8, 8, 8, 8)
#: The file the studio loads, and the published pickle it is made from.
WEIGHTS_FILE = "ControlNetHED.safetensors"
PICKLE_FILE = "ControlNetHED.pth"
#: The annotator's working size: the picture's shorter side is brought to this, both sides to a multiple
#: of 64 (what the ControlNet annotators do; four 2× poolings need a multiple of 16).
DETECT_SIDE = 512
SIDE_MULTIPLE = 64
TINY_SEED = 20261207


def build_network(widths: tuple[int, ...] = REAL_WIDTHS) -> Any:
    """The network with random weights, its parameters named as the published checkpoint names them.

    Plain ``torch.nn`` containers, no class of its own: the names (``norm``, ``block1.convs.0.weight``,
    ``block1.projection.bias`` …) are all that must match, and :func:`side_outputs` runs it.
    """
    import torch

    if len(widths) != len(BLOCK_LAYERS):
        raise ValueError(f"HED has {len(BLOCK_LAYERS)} blocks, not {len(widths)}")
    network = torch.nn.Module()
    # The picture's mean colour, subtracted first (learned; the input is RGB in 0..255).
    network.norm = torch.nn.Parameter(torch.zeros(1, 3, 1, 1))
    channels = 3
    for index, (width, layers) in enumerate(zip(widths, BLOCK_LAYERS, strict=True), start=1):
        block = torch.nn.Module()
        block.convs = torch.nn.Sequential(
            *(torch.nn.Conv2d(channels if i == 0 else width, width, 3, padding=1) for i in range(layers))
        )
        block.projection = torch.nn.Conv2d(width, 1, 1)
        network.add_module(f"block{index}", block)
        channels = width
    return network


def side_outputs(network: Any, pixels: Any) -> list[Any]:
    """The five side outputs (logits, each at its block's resolution) for ``pixels``: 1×3×H×W, RGB 0..255."""
    import torch

    hidden = pixels - network.norm
    outputs = []
    for index in range(1, len(BLOCK_LAYERS) + 1):
        block = getattr(network, f"block{index}")
        if index > 1:
            hidden = torch.nn.functional.max_pool2d(hidden, kernel_size=2, stride=2)
        for conv in block.convs:
            hidden = torch.nn.functional.relu(conv(hidden))
        outputs.append(block.projection(hidden))
    return outputs


def detect_size(width: int, height: int) -> tuple[int, int]:
    """The size the network sees ``width`` × ``height`` at (the annotator's working size)."""
    scale = DETECT_SIDE / min(width, height)
    return (
        max(SIDE_MULTIPLE, round(width * scale / SIDE_MULTIPLE) * SIDE_MULTIPLE),
        max(SIDE_MULTIPLE, round(height * scale / SIDE_MULTIPLE) * SIDE_MULTIPLE),
    )


def edges(network: Any, rgb: np.ndarray) -> np.ndarray:
    """The soft-edge map (H×W, uint8) of ``rgb`` (H×W×3, uint8) at its own size: the side outputs brought
    to that size, averaged, through a sigmoid (as the annotator combines them)."""
    import cv2
    import numpy as np
    import torch

    height, width = rgb.shape[:2]
    parameter = next(network.parameters())
    pixels = torch.from_numpy(np.array(rgb)).to(parameter.device, parameter.dtype)  # a writable copy
    with torch.inference_mode():
        logits = side_outputs(network, pixels.permute(2, 0, 1)[None])
    maps = [
        cv2.resize(logit[0, 0].float().cpu().numpy(), (width, height), interpolation=cv2.INTER_LINEAR)
        for logit in logits
    ]
    mean = np.mean(np.stack(maps, axis=2), axis=2).astype(np.float64)
    with np.errstate(over="ignore"):  # exp(-x) → inf for a very negative logit: sigmoid 0, as it should be
        return (255.0 / (1.0 + np.exp(-mean))).clip(0, 255).astype(np.uint8)


def hed_map(network: Any, picture: Image.Image) -> Image.Image:
    """The HED map of ``picture`` at its size (white edges on black, RGB), made at the working size."""
    import numpy as np
    from PIL import Image

    working = picture.convert("RGB")
    size = detect_size(*working.size)
    if working.size != size:
        working = working.resize(size, Image.Resampling.LANCZOS)
    edge = Image.fromarray(edges(network, np.asarray(working)), "L")
    if edge.size != picture.size:
        edge = edge.resize(picture.size, Image.Resampling.BILINEAR)
    return edge.convert("RGB")


def load_network(weights: Path, device: str) -> Any:
    """The network from its safetensors file (widths read from the tensors: the real one or the tiny)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from imagestudio.errors import ModelNotAvailable

    try:
        tensors = load_file(str(weights))
        widths = checked_widths(tensors)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelNotAvailable(
            f"{weights} is not the HED annotator's network ({exc}); delete it and fetch the real one with: "
            "imagestudio models download controlnet-hed",
            param="control.type",
            code="detector_not_hed",
            details={"file": str(weights)},
        ) from None
    network = build_network(widths)
    network.load_state_dict(tensors)
    return network.float().to(device).eval().requires_grad_(False)


def build_tiny(folder: Path) -> Path:
    """The tiny HED's safetensors file in ``folder`` (the same bytes on every machine)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(TINY_SEED)
    network = build_network(TINY_WIDTHS)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.contiguous() for name, tensor in network.state_dict().items()}
    save_file(tensors, folder / WEIGHTS_FILE)
    return folder


def convert_checkpoint(pickle_path: Path, target: Path) -> Path:
    """Write ``target`` (safetensors) from the HED checkpoint ``pickle_path``, read with torch's restricted
    unpickler and checked tensor by tensor; refuses (one line) anything else. Written beside, renamed in."""
    import pickle

    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(pickle_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refused(pickle_path, _unpickler_refusal(str(exc))) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        why = f"it does not read as a torch checkpoint ({type(exc).__name__})"
        raise _refused(pickle_path, why) from None
    try:
        checked_widths(state)
    except ValueError as exc:
        raise _refused(pickle_path, str(exc)) from None
    staging = target.with_name(f".{target.name}.converting")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_file({name: tensor.contiguous() for name, tensor in state.items()}, staging)
        staging.replace(target)
    finally:
        staging.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
    return target


def checked_widths(state: Any) -> tuple[int, ...]:
    """Each block's width, once every tensor of ``state`` is one of the network's, of its shape; else
    ValueError saying what differs."""
    import torch

    if not isinstance(state, dict) or not all(
        isinstance(name, str) and isinstance(value, torch.Tensor) for name, value in state.items()
    ):
        raise ValueError("it is not a plain table of named tensors")
    widths = []
    for index in range(1, len(BLOCK_LAYERS) + 1):
        first = state.get(f"block{index}.convs.0.weight")
        if first is None or first.dim() != 4:
            raise ValueError(f"it has no block{index}.convs.0.weight")
        widths.append(int(first.shape[0]))
    with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised
        network = build_network(tuple(widths))
    expected = {name: tuple(t.shape) for name, t in network.state_dict().items()}
    differ = sorted(set(state) ^ set(expected))
    if differ:
        raise ValueError(f"its tensor names differ from the network's ({', '.join(differ[:3])} …)")
    for name, tensor in state.items():
        if tuple(tensor.shape) != expected[name]:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, not {expected[name]}")
    return tuple(widths)


def _unpickler_refusal(message: str) -> str:
    """Why torch's restricted unpickler stopped, in a few words (its own message is a page of advice)."""
    import re

    asked = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if asked:
        # The pickle names a function or class to call: what a checkpoint that runs code looks like.
        return f"it asks for {asked.group(1)}, which is no tensor (torch's restricted unpickler refused it)"
    reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", message)
    detail = reason.group(1).strip()[:80] if reason else "unpickling"
    return f"it does not read as a torch checkpoint ({detail})"


def _refused(pickle_path: Path, why: str) -> DownloadFailed:
    return DownloadFailed(
        f"{pickle_path.name} is not the HED annotator's checkpoint: {why}; refused, nothing of it was run "
        "or kept",
        code="detector_not_hed",
        details={"file": pickle_path.name},
    )
