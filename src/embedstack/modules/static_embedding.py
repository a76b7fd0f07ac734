"""StaticEmbedding: the mean of trained per-token vectors (model2vec-style models), no transformer at all."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embedstack.errors import ModelFormatError
from embedstack.modules.base import InputModule, module_dir
from embedstack.registry import ST, register_module

TOKENIZER_FILE = "tokenizer.json"


@register_module(f"{ST}.sentence_transformer.modules.static_embedding.StaticEmbedding", legacy=True)
class StaticEmbedding(InputModule):
    """Text -> token ids (a fast ``tokenizers.Tokenizer``, no special tokens) -> mean of their embedding rows.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` or a fast Hugging Face tokenizer.
        embedding_weights: The (vocab, dim) table; without it, a random table of ``embedding_dim`` columns.
        embedding_dim: Width of a new random table.

    Example:
        >>> from embedstack import SentenceTransformer
        >>> static = StaticEmbedding.from_model2vec(model2vec_path)  # e.g. a download of potion-base-8M
        >>> SentenceTransformer(modules=[static]).encode(["fast"]).shape
        (1, 256)
    """

    save_in_root: bool = True

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: np.ndarray | torch.Tensor | None = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        from tokenizers import Tokenizer

        tokenizer = getattr(tokenizer, "_tokenizer", tokenizer)  # a PreTrainedTokenizerFast wraps one
        if not isinstance(tokenizer, Tokenizer):
            raise ValueError(
                f"StaticEmbedding needs a fast tokenizer (tokenizers.Tokenizer), got {type(tokenizer).__name__}. "
                "Load one with tokenizers.Tokenizer.from_file('tokenizer.json')."
            )
        if embedding_weights is not None:
            weights = torch.as_tensor(embedding_weights)
            if weights.ndim != 2:
                raise ValueError(f"embedding_weights must be a (vocab, dim) table, got shape {tuple(weights.shape)}.")
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False)
        elif embedding_dim is not None:
            self.embedding = nn.EmbeddingBag(tokenizer.get_vocab_size(), embedding_dim)
        else:
            raise ValueError("StaticEmbedding needs embedding_weights or embedding_dim; neither was given.")
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.base_model = kwargs.get("base_model")

    @property
    def num_embeddings(self) -> int:
        """The vocabulary size of the table."""
        return self.embedding.num_embeddings

    @property
    def embedding_dim(self) -> int:
        """The width of the table."""
        return self.embedding.embedding_dim

    @property
    def max_seq_length(self) -> float:
        """No limit: every token of an input is averaged."""
        return math.inf

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Token ids of all inputs, concatenated, with each input's offset."""
        if prompt:
            inputs = self._prepend_prompt(inputs, prompt)
        ids = [encoding.ids for encoding in self.tokenizer.encode_batch(list(inputs), add_special_tokens=False)]
        offsets = torch.from_numpy(np.cumsum([0] + [len(row) for row in ids[:-1]]))  # (batch,)
        input_ids = torch.tensor([token for row in ids for token in row], dtype=torch.long)  # (total_tokens,)
        return {"input_ids": input_ids, "offsets": offsets}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``sentence_embedding``: the mean of each input's token rows."""
        features["sentence_embedding"] = self.embedding(features["input_ids"], features["offsets"])  # (batch, dim)
        return features

    def get_embedding_dimension(self) -> int:
        """The width of the table."""
        return self.embedding_dim

    def get_config_dict(self) -> dict[str, Any]:
        """Nothing: the table and the tokenizer hold all."""
        return {}

    def __repr__(self) -> str:
        return f"StaticEmbedding({{'num_embeddings': {self.num_embeddings}, 'embedding_dim': {self.embedding_dim}}})"

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the table and ``tokenizer.json``."""
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save(str(Path(output_path) / TOKENIZER_FILE))

    @classmethod
    def load(cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", **kwargs: Any) -> StaticEmbedding:
        """Load a folder written by sentence-transformers (``embedding.weight``) or model2vec (``embeddings``)."""
        from tokenizers import Tokenizer

        folder = module_dir(model_name_or_path, subfolder)
        tokenizer_file = folder / TOKENIZER_FILE
        if not tokenizer_file.is_file():
            raise ModelFormatError(f"{folder} has no {TOKENIZER_FILE}, which StaticEmbedding needs. Restore it.")
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises its own Exception subclass
            raise ModelFormatError(f"{tokenizer_file} could not be read ({exc}). Restore the file.") from None
        weights = cls.load_torch_weights(model_name_or_path, subfolder=subfolder)
        if "embedding.weight" in weights:
            table = weights["embedding.weight"]
        elif "embeddings" in weights:
            table = fold_model2vec_weights(weights["embeddings"], weights.get("mapping"), weights.get("weights"))
        else:
            raise ModelFormatError(
                f"The weights in {folder} hold neither 'embedding.weight' (sentence-transformers) nor 'embeddings' "
                f"(model2vec); found {sorted(weights)}."
            )
        if table.ndim != 2 or table.shape[0] < tokenizer.get_vocab_size():
            raise ModelFormatError(
                f"The embedding table in {folder} has shape {tuple(table.shape)}, but its tokenizer has "
                f"{tokenizer.get_vocab_size()} tokens; the weights and tokenizer.json come from different models."
            )
        return cls(tokenizer, embedding_weights=table)

    @classmethod
    def from_model2vec(cls, model_id_or_path: str | os.PathLike[str]) -> StaticEmbedding:
        """From a model2vec folder (``model.safetensors`` + ``tokenizer.json``); model2vec itself is not needed."""
        module = cls.load(model_id_or_path)
        module.base_model = str(model_id_or_path)
        return module


def fold_model2vec_weights(
    embeddings: torch.Tensor, mapping: torch.Tensor | None = None, token_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """One row per token id: ``embeddings[mapping[id]] * token_weights[id]`` (model2vec's vocabulary quantization)."""
    if mapping is not None:
        embeddings = embeddings[mapping.long()]
    if token_weights is not None:
        dtype = embeddings.dtype
        embeddings = (embeddings.to(torch.promote_types(dtype, torch.float32)) * token_weights[:, None]).to(dtype)
    return embeddings.contiguous()
