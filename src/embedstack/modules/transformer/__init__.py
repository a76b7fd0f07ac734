"""The Transformer module: a Hugging Face backbone with its tokenizer or processor, and what it needs."""

from embedstack.modules.transformer.module import Transformer

__all__ = ["Transformer"]
