"""Tiny multimodal backbones built from configs (random weights), saved as plain Hugging Face folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from embedstack.defaults import default_model_path
from helpers import tiny_llama

# A flat chat template (content is the message text itself), as text-only causal LMs have.
FLAT_CHAT_TEMPLATE = "{% for message in messages %}<{{ message['role'] }}> {{ message['content'] }} [SEP]{% endfor %}"


def tiny_clip(target: Path, seed: int = 0) -> Path:
    """A CLIP dual encoder (text + image, 32 wide, 32x32 images) with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    text = dict(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
        bos_token_id=101,
        eos_token_id=102,
        pad_token_id=0,
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(target)
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()), model_max_length=64)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(target)
    return target


def tiny_chat_lm(target: Path, seed: int = 0) -> Path:
    """A tiny Llama causal LM whose tokenizer has a flat chat template."""
    from transformers import AutoTokenizer

    tiny_llama(target, seed=seed)
    tokenizer = AutoTokenizer.from_pretrained(target)
    tokenizer.chat_template = FLAT_CHAT_TEMPLATE
    tokenizer.save_pretrained(target)
    return target


def tiny_audio(target: Path, seed: int = 0) -> Path:
    """An Audio Spectrogram Transformer (audio only) with its feature extractor (16 mel bins)."""
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(seed)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=16,
        max_length=64,
        patch_size=16,
        frequency_stride=10,
        time_stride=10,
    )
    ASTModel(config).save_pretrained(target)
    ASTFeatureExtractor(num_mel_bins=16, max_length=64).save_pretrained(target)
    return target


def sample_images(count: int = 3) -> list:
    """Random RGB PIL images of different sizes."""
    from PIL import Image

    rng = np.random.RandomState(0)
    return [
        Image.fromarray((rng.rand(24 + 8 * i, 40 - 4 * i, 3) * 255).astype("uint8"), mode="RGB") for i in range(count)
    ]


def sample_clips(count: int = 3) -> list[np.ndarray]:
    """Random mono waveforms of different lengths (16 kHz)."""
    rng = np.random.RandomState(0)
    return [rng.randn(2000 + 700 * i).astype("float32") for i in range(count)]


# A structured chat template (content is a list of typed parts), as vision-language models have.
STRUCTURED_CHAT_TEMPLATE = (
    "{% for message in messages %}<{{ message['role'] }}>{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% else %} {{ item['text'] }}{% endif %}{% endfor %}{% endif %} [SEP]{% endfor %}"
)


def tiny_llava(target: Path, seed: int = 0) -> Path:
    """A LLaVA-style vision-language chat model: a CLIP vision tower and a Llama decoder, 28x28 images, the
    MiniLM tokenizer with an <image> token and a structured chat template. (Qwen2-VL needs torchvision for its
    video processor, which this environment does not have.)"""
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    torch.manual_seed(seed)
    text = dict(
        model_type="llama",
        vocab_size=30524,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
    )
    vision = dict(
        model_type="clip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
        projection_dim=16,
    )
    config = LlavaConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    LlavaForConditionalGeneration(config).save_pretrained(target)
    images = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    LlavaProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        chat_template=STRUCTURED_CHAT_TEMPLATE,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    ).save_pretrained(target)
    return target
