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
