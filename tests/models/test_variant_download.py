"""Downloads of a weight variant fetch only what it needs (local fake hub, real HTTP), and the planner then
runs what was fetched."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from imagestudio.errors import NotEnoughDiskSpace, UserError
from imagestudio.hardware import Hardware, simulate_hardware
from imagestudio.memory.plan import Environment
from imagestudio.memory.planner import MemoryPlanner
from imagestudio.memory.variant_sizes import gguf_tensor_bytes
from imagestudio.models.cache import repo_storage
from imagestudio.models.download import download_variant
from imagestudio.models.variants import variant_files
from imagestudio.registry import get_model
from tests.models.conftest import JUNK_FILES, TEST_REPO

pytestmark = pytest.mark.usefixtures("hub_online")

Usage = namedtuple("Usage", "total used free")
SPEC = get_model("z-image-turbo")
Q4 = SPEC.variant("gguf-q4_k_m")
GIB = 1024**3


def gguf_bytes(tmp_path: Path) -> bytes:
    """A small GGUF file standing in for the published one (K-quants cannot be written offline)."""
    import gguf

    path = tmp_path / "stand-in.gguf"
    writer = gguf.GGUFWriter(str(path), "z_image")
    data = gguf.quants.quantize(np.ones((64, 256), dtype=np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("layers.0.attention.qkv.weight", data, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


@pytest.fixture
def gguf_hub(fake_hub, tmp_path: Path):
    assert Q4.repo_id is not None and Q4.filename is not None
    fake_hub.add_repo(Q4.repo_id, files={Q4.filename: gguf_bytes(tmp_path), "README.md": b"# gguf\n"})
    return fake_hub


def test_gguf_variant_fetches_the_file_and_the_base_without_its_transformer(
    gguf_hub, mirror_settings, hub_cache, monkeypatch
) -> None:
    result = download_variant(
        mirror_settings, "z-image-turbo", "gguf-q4_k_m", endpoint=gguf_hub.url, cache_dir=hub_cache
    )
    fetched = [(s.repo, s.path) for s in gguf_hub.gets()]
    base = {path for repo, path in fetched if repo == TEST_REPO}
    assert (Q4.repo_id, Q4.filename) in fetched and (Q4.repo_id, "README.md") not in fetched
    assert not any(p.startswith("transformer/") and p.endswith(".safetensors") for p in base)
    assert "transformer/config.json" in base and "text_encoder/config.json" in base
    assert base.isdisjoint(JUNK_FILES)
    assert result.report.ok, result.report.summary()
    assert result.folder == repo_storage(Q4.repo_id, hub_cache) / "snapshots" / gguf_hub.repos[Q4.repo_id].sha

    # The loader's locator finds the variant, and the planner plans it at the file's header size.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))  # where this process's hub cache is
    files = variant_files(SPEC, Q4, mirror_settings)
    assert files is not None and files.gguf_file == result.folder / Q4.filename
    cpu = Hardware("cpu", "test", 0, 0, True, None, 32 * GIB, 32 * GIB, None)
    environment = Environment(variants=frozenset({"gguf", "sdnq"}))
    planner = MemoryPlanner(mirror_settings, simulate_hardware(cpu, 8, 32), "cuda", environment)
    assert set(planner.present_variants(SPEC)) == {"gguf-q4_k_m"}  # bf16's transformer is not here
    plan = planner.plan(SPEC)
    assert plan.variant == "gguf-q4_k_m"
    assert plan.transformer_bytes == gguf_tensor_bytes(files.gguf_file)

    # A second run fetches nothing more.
    before = len(gguf_hub.gets())
    again = download_variant(
        mirror_settings, "z-image-turbo", "gguf-q4_k_m", endpoint=gguf_hub.url, cache_dir=hub_cache
    )
    assert again.fetched_bytes == 0
    assert [s.path for s in gguf_hub.gets()[before:]] == ["model_index.json"]  # read to plan, nothing else


def test_variant_disk_check_counts_both_repositories_before_any_transfer(
    gguf_hub, mirror_settings, hub_cache
) -> None:
    keep = int(mirror_settings.downloads.min_free_gb * 1000**3)
    with pytest.raises(NotEnoughDiskSpace) as refused:
        download_variant(
            mirror_settings, "z-image-turbo", "gguf-q4_k_m", endpoint=gguf_hub.url, cache_dir=hub_cache,
            disk_usage=lambda path: Usage(10**12, 10**12, keep + 1000),
        )  # fmt: skip
    assert "z-image-turbo gguf-q4_k_m" in refused.value.message and "\n" not in refused.value.message
    assert {s.path for s in gguf_hub.gets()} == {"model_index.json"}  # read for the plan only
    assert not hub_cache.exists()


def test_sdnq_variant_is_its_own_pipeline_repository(
    fake_hub, hub_repo_dir, mirror_settings, hub_cache
) -> None:
    sdnq = SPEC.variant("sdnq-uint4")
    assert sdnq.repo_id is not None
    fake_hub.add_repo(sdnq.repo_id, hub_repo_dir)
    result = download_variant(
        mirror_settings, "z-image-turbo", "sdnq-uint4", endpoint=fake_hub.url, cache_dir=hub_cache
    )
    repos = {s.repo for s in fake_hub.gets()}
    assert repos == {sdnq.repo_id}
    assert result.report.ok and (result.folder / "model_index.json").is_file()


def test_variant_download_refusals_are_one_line(gguf_hub, mirror_settings, hub_cache, tmp_path) -> None:
    for weights, to, code in (
        ("gguf-q4_k_m", tmp_path / "x", "download_variant_to"),
        ("gguf-q9", None, "unknown_weights"),
    ):
        with pytest.raises(UserError) as refused:
            download_variant(
                mirror_settings, "z-image-turbo", weights, to=to, endpoint=gguf_hub.url, cache_dir=hub_cache
            )
        assert refused.value.code == code and "\n" not in refused.value.message
    assert gguf_hub.gets() == []


def test_verify_and_remove_one_variant(gguf_hub, mirror_settings, hub_cache, monkeypatch) -> None:
    from huggingface_hub import constants

    from imagestudio.models.removal import remove_model
    from imagestudio.models.variant_state import plan_variant_removal, verify_variant

    download_variant(
        mirror_settings, "z-image-turbo", "gguf-q4_k_m", endpoint=gguf_hub.url, cache_dir=hub_cache
    )
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    report = verify_variant(mirror_settings, "z-image-turbo", "gguf-q4_k_m")
    assert report.ok, report.summary()
    assert "transformer" in report.components  # the base's transformer config is checked, not its weights

    files = variant_files(SPEC, Q4, mirror_settings)
    assert files is not None and files.gguf_file is not None
    blob = files.gguf_file.resolve()
    data = blob.read_bytes()
    blob.write_bytes(data[:40])  # cut inside the header
    broken = verify_variant(mirror_settings, "z-image-turbo", "gguf-q4_k_m")
    assert not broken.ok and Q4.filename in broken.summary() and "\n" not in broken.summary()
    blob.write_bytes(data)

    removal = plan_variant_removal(mirror_settings, "z-image-turbo", "gguf-q4_k_m")
    assert removal.paths == (repo_storage(Q4.repo_id, hub_cache),)  # not the base model it shares
    remove_model(removal)
    assert variant_files(SPEC, Q4, mirror_settings) is None
    assert (repo_storage(TEST_REPO, hub_cache) / "snapshots").is_dir()
    with pytest.raises(UserError):
        plan_variant_removal(mirror_settings, "z-image-turbo", "bf16")
