"""Tiny video-language backbones built from configs (random weights), and tiny video files made with PyAV.

Qwen2-VL, Qwen2.5-VL, Qwen3-VL and LLaVA-OneVision, each with its own processor (image and video processors at
a few dozen pixels) and the MiniLM tokenizer plus the model's vision tokens, under a structured chat template
that places them. Building the video processors needs torchvision (the .venv-video environment).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from embedstack.defaults import default_model_path

QWEN_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
ONEVISION_TOKENS = ["<image>", "<video>"]


def chat_template(image: str, video: str) -> str:
    """A structured chat template writing ``image`` / ``video`` where a message has such a part."""
    return (
        "{% for message in messages %}<{{ message['role'] }}>{% if message['content'] is string %}"
        "{{ message['content'] }}{% else %}{% for item in message['content'] %}"
        f"{{% if item['type'] == 'image' %}}{image}{{% elif item['type'] == 'video' %}}{video}"
        "{% else %} {{ item['text'] }}{% endif %}{% endfor %}{% endif %} [SEP]{% endfor %}"
    )


QWEN_TEMPLATE = chat_template(
    "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_start|><|video_pad|><|vision_end|>"
)
ONEVISION_TEMPLATE = chat_template("<image>", "<video>")


def _tokenizer(extra_tokens: list[str]):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
    tokenizer.add_special_tokens({"additional_special_tokens": extra_tokens})
    return tokenizer


def _text_config(tokenizer, **extra) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
        **extra,
    )


def _qwen_ids(tokenizer) -> dict:
    ids = tokenizer.convert_tokens_to_ids(QWEN_TOKENS)
    return dict(vision_start_token_id=ids[0], vision_end_token_id=ids[1], image_token_id=ids[2], video_token_id=ids[3])


def tiny_qwen2_vl(target: Path, seed: int = 0, *, version: str = "2") -> Path:
    """Qwen2-VL (``version="2"``) or Qwen2.5-VL (``"2.5"``): 14-pixel patches merged 2x2, 2-frame tubelets."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    tokenizer = _tokenizer(QWEN_TOKENS)
    torch.manual_seed(seed)
    rope = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0}
    text = _text_config(tokenizer, rope_parameters=rope)
    if version == "2":
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLModel as Model
        from transformers import Qwen2VLProcessor as Processor

        vision: dict = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2)
    else:
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLModel as Model
        from transformers import Qwen2_5_VLProcessor as Processor

        vision = dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
            window_size=56, fullatt_block_indexes=[1],
        )  # fmt: skip
    config = Config(text_config=text, vision_config=vision, **_qwen_ids(tokenizer))
    Model(config).save_pretrained(target)
    pixels = {"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 4}
    Processor(
        image_processor=Qwen2VLImageProcessor(size=pixels),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=pixels, min_frames=2, max_frames=8, cap_pixels_per_frame=True),
        chat_template=QWEN_TEMPLATE,
    ).save_pretrained(target)
    return target


def tiny_qwen3_vl(target: Path, seed: int = 0) -> Path:
    """Qwen3-VL: 16-pixel patches merged 2x2, deepstack features, frame timestamps written into the prompt."""
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLModel,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    tokenizer = _tokenizer(QWEN_TOKENS)
    torch.manual_seed(seed)
    rope = {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True, "rope_theta": 10000.0}
    text = _text_config(tokenizer, head_dim=16, rope_parameters=rope)
    vision = dict(
        depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, out_hidden_size=32,
        num_position_embeddings=16, deepstack_visual_indexes=[1],
    )  # fmt: skip
    Qwen3VLModel(Qwen3VLConfig(text_config=text, vision_config=vision, **_qwen_ids(tokenizer))).save_pretrained(target)
    pixels = {"shortest_edge": 32 * 32, "longest_edge": 32 * 32 * 4}
    Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=16),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(
            size={"shortest_edge": 32 * 32, "longest_edge": 32 * 32 * 32}, cap_pixels_per_frame=True
        ),
        chat_template=QWEN_TEMPLATE,
    ).save_pretrained(target)
    return target


def tiny_llava_onevision(target: Path, seed: int = 0) -> Path:
    """LLaVA-OneVision: a SigLIP tower on 28x28 crops, a Qwen2 decoder, videos pooled 2x2 per frame."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionModel,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tokenizer = _tokenizer(ONEVISION_TOKENS)
    image_id, video_id = tokenizer.convert_tokens_to_ids(ONEVISION_TOKENS)
    torch.manual_seed(seed)
    text = _text_config(tokenizer, model_type="qwen2")
    vision = dict(
        model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, image_size=28, patch_size=14,
    )  # fmt: skip
    grid = [[28, 28], [28, 56], [56, 28]]
    config = LlavaOnevisionConfig(
        text_config=text,
        vision_config=vision,
        image_token_index=image_id,
        video_token_index=video_id,
        image_grid_pinpoints=grid,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_1",
    )
    LlavaOnevisionModel(config).save_pretrained(target)
    size = {"height": 28, "width": 28}
    LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=grid),
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        num_image_tokens=4,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_1",
        chat_template=ONEVISION_TEMPLATE,
    ).save_pretrained(target)
    return target


def sample_frames(count: int = 6, height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    """A (frames, H, W, 3) uint8 clip: a bright square moving over noise."""
    rng = np.random.RandomState(seed)
    frames = (rng.rand(count, height, width, 3) * 80).astype("uint8")
    for index in range(count):
        frames[index, 8:20, 4 + 4 * index : 16 + 4 * index] = 230
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int = 4) -> Path:
    """Encode (frames, H, W, 3) uint8 ``frames`` as an MPEG-4 file at ``fps`` with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def qwen2_vl_files(target: Path, seed: int = 0) -> Path:
    """A Qwen2-VL folder written file by file, without building its processors (which needs torchvision):
    what a downloaded video-language model looks like to an environment without torchvision."""
    import json

    from transformers import Qwen2VLConfig, Qwen2VLModel

    tokenizer = _tokenizer(QWEN_TOKENS)
    torch.manual_seed(seed)
    rope = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0}
    vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2)
    config = Qwen2VLConfig(text_config=_text_config(tokenizer, rope_parameters=rope), vision_config=vision)
    config.update(_qwen_ids(tokenizer))
    Qwen2VLModel(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / "chat_template.jinja").write_text(QWEN_TEMPLATE)
    pixels = {"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 4}
    processor = {
        "processor_class": "Qwen2VLProcessor",
        "image_processor": {"image_processor_type": "Qwen2VLImageProcessor", "size": pixels},
        "video_processor": {
            "video_processor_type": "Qwen2VLVideoProcessor",
            "size": pixels,
            "cap_pixels_per_frame": True,
        },
    }
    (target / "processor_config.json").write_text(json.dumps(processor, indent=2))
    return target
