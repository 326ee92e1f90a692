"""HED soft edges: the network against controlnet-aux's own detector, the pickle-to-safetensors conversion
under torch's restricted unpickler, and the refusals of checkpoints that are not HED's."""

from __future__ import annotations

import builtins
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from imagestudio.errors import DownloadFailed, ModelNotAvailable
from imagestudio.models import hed


def picture(width: int = 64, height: int = 64) -> Image.Image:
    image = Image.new("RGB", (width, height), (25, 30, 40))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 5, height // 5, width * 4 // 5, height * 4 // 5), fill=(230, 190, 80))
    draw.line((0, height - 5, width, 5), fill=(250, 250, 250), width=3)
    return image


def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return {name: t.half() for name, t in hed.build_network(hed.TINY_WIDTHS).state_dict().items()}


def test_the_network_draws_what_controlnet_aux_draws_weight_for_weight(tmp_path: Path) -> None:
    """The full-size network with random weights, loaded through the studio's safetensors path, against
    controlnet-aux's ControlNetHED_Apache2 and HEDdetector holding the very same weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its package imports all its detectors (timm's registry warns)
        from controlnet_aux.hed import ControlNetHED_Apache2, HEDdetector

    torch.manual_seed(1)
    reference = ControlNetHED_Apache2()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.normal_(0.0, 0.05)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, tmp_path / hed.WEIGHTS_FILE)
    ours = hed.load_network(tmp_path / hed.WEIGHTS_FILE, "cpu")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())

    pixels = np.asarray(picture())
    with np.errstate(over="ignore"):  # its sigmoid overflows to the right 0 on strongly negative logits
        expected = HEDdetector(reference.float().eval())(
            pixels, detect_resolution=64, image_resolution=64, output_type="np"
        )[..., 0]
    drawn = hed.edges(ours, pixels)
    assert expected.std() > 10  # a picture of edges, not a flat grey
    assert np.abs(drawn.astype(int) - expected.astype(int)).max() <= 1


def test_the_map_is_made_at_the_working_size_and_returned_at_the_pictures() -> None:
    assert hed.detect_size(1024, 768) == (704, 512)  # shorter side to 512, both to a multiple of 64
    assert hed.detect_size(512, 1536) == (512, 1536)
    torch.manual_seed(0)
    network = hed.build_network(hed.TINY_WIDTHS).eval()
    edge_map = hed.hed_map(network, picture(80, 48))
    assert edge_map.size == (80, 48) and edge_map.mode == "RGB"
    red, green, blue = (np.asarray(edge_map)[..., i] for i in range(3))
    assert np.array_equal(red, green) and np.array_equal(green, blue)  # grey: white edges on black


def test_a_checkpoint_converts_to_the_same_tensors_and_the_network_loads_from_them(tmp_path: Path) -> None:
    state = tiny_state()
    torch.save(state, tmp_path / hed.PICKLE_FILE)
    target = hed.convert_checkpoint(tmp_path / hed.PICKLE_FILE, tmp_path / "out" / hed.WEIGHTS_FILE)
    converted = load_file(str(target))
    assert converted.keys() == state.keys()
    assert all(torch.equal(converted[name], tensor) for name, tensor in state.items())  # fp16 as published
    network = hed.load_network(target, "cpu")
    assert next(network.parameters()).dtype == torch.float32
    assert [p.name for p in (tmp_path / "out").iterdir()] == [hed.WEIGHTS_FILE]  # nothing left beside it


class _OpensAFile:
    """Unpickled by a plain ``pickle.load``, this creates ``path``: what a hostile checkpoint would do."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (builtins.open, (str(self.path), "w"))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "created-by-the-pickle"
    hostile = tiny_state()
    hostile["block1.convs.0.weight"] = _OpensAFile(marker)  # type: ignore[assignment]
    torch.save(hostile, tmp_path / hed.PICKLE_FILE)
    with pytest.raises(DownloadFailed) as refused:
        hed.convert_checkpoint(tmp_path / hed.PICKLE_FILE, tmp_path / hed.WEIGHTS_FILE)
    message = refused.value.message
    start = r"ControlNetHED\.pth is not the HED annotator's checkpoint: it asks for \S*open,"
    assert re.match(start, message)
    assert "\n" not in message
    assert not marker.exists() and not (tmp_path / hed.WEIGHTS_FILE).exists()
    # The same file through an unrestricted load does run it: the refusal above is the restriction's.
    torch.load(tmp_path / hed.PICKLE_FILE, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda s: s.pop("block3.projection.bias"), "tensor names differ from the network's"),
        (lambda s: s.update({"extra.weight": torch.zeros(1)}), "tensor names differ from the network's"),
        (lambda s: s.update({"block2.convs.1.weight": torch.zeros(8, 8, 1, 1)}), "has shape (8, 8, 1, 1)"),
        (lambda s: s.pop("block5.convs.0.weight"), "no block5.convs.0.weight"),
        (lambda s: s.update({"norm": [1, 2, 3]}), "not a plain table of named tensors"),
    ],
)
def test_a_checkpoint_of_another_network_is_refused_in_one_line(tmp_path: Path, change, why) -> None:
    state = tiny_state()
    change(state)
    torch.save(state, tmp_path / hed.PICKLE_FILE)
    with pytest.raises(DownloadFailed, match=r"^ControlNetHED\.pth is not the HED annotator's") as refused:
        hed.convert_checkpoint(tmp_path / hed.PICKLE_FILE, tmp_path / hed.WEIGHTS_FILE)
    assert why in refused.value.message and "\n" not in refused.value.message
    assert not (tmp_path / hed.WEIGHTS_FILE).exists()


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / hed.PICKLE_FILE).write_bytes(b"<html>rate limited</html>")
    with pytest.raises(DownloadFailed, match=r"does not read as a torch checkpoint \(Unsupported operand"):
        hed.convert_checkpoint(tmp_path / hed.PICKLE_FILE, tmp_path / hed.WEIGHTS_FILE)


def test_a_safetensors_file_of_another_network_is_refused_when_loaded(tmp_path: Path) -> None:
    save_file({"weight": torch.zeros(2, 2)}, tmp_path / hed.WEIGHTS_FILE)
    with pytest.raises(ModelNotAvailable, match=r"imagestudio models download controlnet-hed$") as refused:
        hed.load_network(tmp_path / hed.WEIGHTS_FILE, "cpu")
    assert "no block1.convs.0.weight" in refused.value.message
    # A damaged file (cut short, or not safetensors at all) is the same one line, not a library error.
    (tmp_path / hed.WEIGHTS_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(ModelNotAvailable, match=r"imagestudio models download controlnet-hed$") as refused:
        hed.load_network(tmp_path / hed.WEIGHTS_FILE, "cpu")
    assert "\n" not in refused.value.message
