"""Which repository files a pipeline download fetches, on realistic file lists."""

from __future__ import annotations

from imagestudio.models.files import component_folders, select_pipeline_files, weight_variant

# The two repositories' layouts as their public file listings describe them (folders, config and
# tokenizer files, shard counts: transformer 3 and text encoder 3 shards for Z-Image-Turbo; 5 and 4 for
# Qwen-Image-Edit-2511). The names of the README pictures are illustrative.
Z_IMAGE_TURBO_INDEX = {
    "_class_name": "ZImagePipeline",
    "_diffusers_version": "0.36.0.dev0",
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "Qwen3Model"],
    "tokenizer": ["transformers", "Qwen2Tokenizer"],
    "transformer": ["diffusers", "ZImageTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
Z_IMAGE_TURBO_NEEDED = [
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/generation_config.json",
    "text_encoder/model-00001-of-00003.safetensors",
    "text_encoder/model-00002-of-00003.safetensors",
    "text_encoder/model-00003-of-00003.safetensors",
    "text_encoder/model.safetensors.index.json",
    "tokenizer/merges.txt",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
    "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
    "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
]
Z_IMAGE_TURBO_FILES = [
    ".gitattributes",
    "README.md",
    "assets/showcase_realistic.png",
    "assets/showcase_text.jpg",
    "assets/architecture.webp",
    *Z_IMAGE_TURBO_NEEDED,
]

QWEN_EDIT_2511_INDEX = {
    "_class_name": "QwenImageEditPlusPipeline",
    "_diffusers_version": "0.36.0.dev0",
    "processor": ["transformers", "Qwen2VLProcessor"],
    "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
    "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
    "tokenizer": ["transformers", "Qwen2Tokenizer"],
    "transformer": ["diffusers", "QwenImageTransformer2DModel"],
    "vae": ["diffusers", "AutoencoderKLQwenImage"],
}
QWEN_EDIT_2511_NEEDED = [
    "model_index.json",
    *(
        f"processor/{name}"
        for name in (
            "added_tokens.json",
            "chat_template.jinja",
            "merges.txt",
            "preprocessor_config.json",
            "special_tokens_map.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "video_preprocessor_config.json",
            "vocab.json",
        )
    ),
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/generation_config.json",
    *(f"text_encoder/model-0000{i}-of-00004.safetensors" for i in range(1, 5)),
    "text_encoder/model.safetensors.index.json",
    *(
        f"tokenizer/{name}"
        for name in (
            "added_tokens.json",
            "chat_template.jinja",
            "merges.txt",
            "special_tokens_map.json",
            "tokenizer_config.json",
            "vocab.json",
        )
    ),
    "transformer/config.json",
    *(f"transformer/diffusion_pytorch_model-0000{i}-of-00005.safetensors" for i in range(1, 6)),
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
]
QWEN_EDIT_2511_FILES = [".gitattributes", "README.md", *QWEN_EDIT_2511_NEEDED]


def test_z_image_turbo_fetches_components_only() -> None:
    components = component_folders(Z_IMAGE_TURBO_INDEX)
    assert components == ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"]
    assert select_pipeline_files(Z_IMAGE_TURBO_FILES, components) == sorted(Z_IMAGE_TURBO_NEEDED)


def test_qwen_edit_2511_keeps_processor_and_tokenizer_files() -> None:
    components = component_folders(QWEN_EDIT_2511_INDEX)
    assert "processor" in components
    assert select_pipeline_files(QWEN_EDIT_2511_FILES, components) == sorted(QWEN_EDIT_2511_NEEDED)


def test_duplicates_and_other_formats_are_skipped() -> None:
    index = {
        "_class_name": "StableDiffusionPipeline",
        "safety_checker": [None, None],  # an optional component this checkpoint does not have
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "text_encoder": ["transformers", "CLIPTextModel"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    files = [
        "model_index.json",
        "safety_checker/model.safetensors",  # not a component of this pipeline: never fetched
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/pytorch_model.bin",
        "text_encoder/flax_model.msgpack",
        "text_encoder/onnx/model.onnx",
        "unet/config.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.fp16.json",
        "unet/diffusion_pytorch_model.ckpt",
        "unet/.hidden",
        # Only a half-precision copy exists for the VAE: that copy is all there is, so it is kept.
        "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
        "vae/README.md",
        "v1-inference.yaml",
    ]
    assert component_folders(index) == ["text_encoder", "unet", "vae"]
    assert select_pipeline_files(files, component_folders(index)) == [
        "model_index.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.safetensors.index.json",
        "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ]


def test_weight_variant_names() -> None:
    assert weight_variant("diffusion_pytorch_model.safetensors") is None
    assert weight_variant("model-00001-of-00004.safetensors") is None
    assert weight_variant("model.safetensors.index.json") is None
    assert weight_variant("diffusion_pytorch_model.fp16.safetensors") == "fp16"
    assert weight_variant("diffusion_pytorch_model.bf16-00001-of-00002.safetensors") == "bf16"
    assert weight_variant("model.safetensors.index.fp16.json") == "fp16"
    assert weight_variant("config.json") is None
