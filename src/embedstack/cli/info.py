"""``embedstack info``: a model's kind, modules, dimensions (or labels), modalities, backend, prompts, similarity."""

from __future__ import annotations

import argparse
import json

from embedstack.cli.model_options import add_backend_arguments, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack info``."""
    parser.add_argument("model", nargs="?", help="model folder or Hub id (default: the embedded model)")
    parser.add_argument("--trust-remote-code", action="store_true")
    add_backend_arguments(parser)
    parser.add_argument("--int8-min-cosine", type=float, help="with an int8 --onnx-file: the self-check's threshold")


def run(args: argparse.Namespace) -> int:
    """Load the model on CPU and describe it."""
    model = load_model(args, "cpu", kind=None)
    print(model)
    print(f"Kind: {model.model_type}")
    if model.model_type == "CrossEncoder":
        print(f"Labels: {model.num_labels}")
        print(f"Activation: {type(model.activation_fn).__name__}")
    else:
        print(f"Embedding dimension: {model.get_embedding_dimension()}")
    print(f"Max sequence length: {model.max_seq_length}")
    print(f"Modalities: {', '.join('+'.join(m) if isinstance(m, tuple) else m for m in model.modalities)}")
    message = getattr(model[0], "modality_config", {}).get("message")
    if message:
        print(f"Message format: {message.get('format', 'auto')}")
    print(f"Backend: {model.get_backend()}")
    if model.backend_choice is not None:
        print(f"Backend choice (auto): {model.backend_choice.summary()}")
    if model.int8_check is not None:
        print(f"int8: {model.int8_check.summary()}")
    if model.model_type != "CrossEncoder":
        print(f"Similarity function: {model.similarity_fn_name}")
    print(f"Prompts: {json.dumps(dict(model.prompts), ensure_ascii=False)}")
    print(f"Default prompt: {model.default_prompt_name}")
    if getattr(model, "truncate_dim", None):
        print(f"Truncate dim: {model.truncate_dim}")
    return 0
