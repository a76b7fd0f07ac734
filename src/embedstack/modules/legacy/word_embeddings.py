"""WordEmbeddings: a word-level tokenizer and an embedding table (GloVe-style models; a legacy module)."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embedstack.errors import ModelFormatError, UntrustedCodeError
from embedstack.modules.base import InputModule, module_dir
from embedstack.modules.legacy.word_tokenizers import (
    TOKENIZER_CLASS_NAMES,
    TransformersTokenizerWrapper,
    WhitespaceTokenizer,
    WordTokenizer,
    tokenizer_class_name,
)
from embedstack.registry import ST, import_trusted_class, register_module

logger = logging.getLogger(__name__)


@register_module(f"{ST}.sentence_transformer.modules.word_embeddings.WordEmbeddings", legacy=True)
class WordEmbeddings(InputModule):
    """Text -> word ids (with ``tokenizer``) -> ``token_embeddings`` from a fixed table.

    Args:
        tokenizer: A :class:`WordTokenizer` (or a Hugging Face tokenizer, wrapped).
        embedding_weights: The (vocab, dim) table; row i embeds vocabulary id i.
        update_embeddings: Train the table (kept for the format; embedstack only encodes).
        max_seq_length: Words kept per text.
    """

    config_keys: list[str] = ["tokenizer_class", "update_embeddings", "max_seq_length"]
    config_file_name: str = "wordembedding_config.json"
    save_in_root: bool = False

    def __init__(
        self,
        tokenizer: WordTokenizer | Any,
        embedding_weights: np.ndarray | torch.Tensor | list,
        update_embeddings: bool = False,
        max_seq_length: int = 1000000,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(tokenizer, WordTokenizer):
            if not hasattr(tokenizer, "save_pretrained"):
                raise ValueError(f"tokenizer must be a WordTokenizer or a Hugging Face tokenizer, got {tokenizer!r}.")
            tokenizer = TransformersTokenizerWrapper(tokenizer)
        weights = torch.as_tensor(
            np.asarray(embedding_weights) if isinstance(embedding_weights, list) else embedding_weights
        )
        if weights.ndim != 2:
            raise ValueError(f"embedding_weights must be a (vocab, dim) table, got shape {tuple(weights.shape)}.")
        self.emb_layer = nn.Embedding.from_pretrained(weights.float(), freeze=not update_embeddings)
        self.tokenizer = tokenizer
        self.update_embeddings = update_embeddings
        self.max_seq_length = max_seq_length

    @property
    def tokenizer_class(self) -> str:
        """The dotted name of the tokenizer's class, as ``wordembedding_config.json`` records it."""
        return tokenizer_class_name(self.tokenizer)

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Word ids of each text (at most ``max_seq_length``), padded, with their lengths."""
        if prompt:
            inputs = self._prepend_prompt(inputs, prompt)
        ids = [self.tokenizer.tokenize(text)[: self.max_seq_length] for text in inputs]
        lengths = [len(row) for row in ids]
        width = max(1, *lengths) if lengths else 1
        input_ids = torch.zeros(len(ids), width, dtype=torch.long)  # (batch, seq)
        attention_mask = torch.zeros(len(ids), width, dtype=torch.long)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            attention_mask[row, : len(tokens)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "sentence_lengths": torch.tensor(lengths, dtype=torch.long),
        }

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``token_embeddings``: the table rows of the word ids."""
        features["token_embeddings"] = self.emb_layer(features["input_ids"])  # (batch, seq, dim)
        features["cls_token_embeddings"] = None
        return features

    def get_embedding_dimension(self) -> int:
        """The width of the embedding table."""
        return self.emb_layer.embedding_dim

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config, the table and the tokenizer."""
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save(output_path)

    @classmethod
    def load(cls, model_name_or_path: str | os.PathLike, subfolder: str = "", **kwargs: Any) -> WordEmbeddings:
        """Build the module from its config, its tokenizer's file and its table."""
        folder = module_dir(model_name_or_path, subfolder)
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        tokenizer_cls = _tokenizer_class(config.pop("tokenizer_class", None), folder, kwargs)
        try:
            tokenizer = tokenizer_cls.load(str(folder))
        except (OSError, TypeError) as exc:
            raise ModelFormatError(
                f"The {tokenizer_cls.__name__} of {folder} could not be loaded ({exc}). Restore its files."
            ) from None
        weights = cls.load_torch_weights(model_name_or_path, subfolder=subfolder)
        if "emb_layer.weight" not in weights:
            raise ModelFormatError(
                f"The weights in {folder} have no 'emb_layer.weight' table (keys: {sorted(weights)})."
            )
        try:
            return cls(tokenizer=tokenizer, embedding_weights=weights["emb_layer.weight"], **config)
        except TypeError as exc:
            raise ModelFormatError(f"{folder / cls.config_file_name} does not fit WordEmbeddings: {exc}.") from None

    @classmethod
    def from_text_file(
        cls,
        embeddings_file_path: str,
        update_embeddings: bool = False,
        item_separator: str = " ",
        tokenizer: WordTokenizer | None = None,
        max_vocab_size: int | None = None,
    ) -> WordEmbeddings:
        """Read a GloVe / word2vec text file (optionally .gz): one word and its vector per line.

        Row 0 becomes a zero "PADDING_TOKEN"; a word2vec header line is skipped; lines of another width are skipped
        with a warning.
        """
        if not Path(embeddings_file_path).is_file():
            raise FileNotFoundError(f"{embeddings_file_path} does not exist; embedstack does not download it.")
        tokenizer = tokenizer or WhitespaceTokenizer()
        vocab: list[str] = []
        vectors: list[np.ndarray] = []
        opener = gzip.open if str(embeddings_file_path).endswith(".gz") else open
        with opener(embeddings_file_path, "rt", encoding="utf8") as handle:
            for line_number, line in enumerate(handle, 1):
                parts = line.rstrip().split(item_separator)
                if not vocab and len(parts) == 2:
                    continue  # word2vec header: "<count> <dim>"
                if not vocab:
                    vocab.append("PADDING_TOKEN")
                    vectors.append(np.zeros(len(parts) - 1))
                if len(parts) - 1 != len(vectors[0]):
                    logger.warning(
                        "Skipping line %d of %s: not %d values", line_number, embeddings_file_path, len(vectors[0])
                    )
                    continue
                vocab.append(parts[0])
                vectors.append(np.array([float(value) for value in parts[1:]]))
                if max_vocab_size and len(vocab) > max_vocab_size:
                    break
        tokenizer.set_vocab(vocab)
        return cls(tokenizer=tokenizer, embedding_weights=np.asarray(vectors), update_embeddings=update_embeddings)


def _tokenizer_class(name: Any, folder: Path, kwargs: dict[str, Any]) -> type[Any]:
    """The tokenizer class ``wordembedding_config.json`` names; code outside embedstack needs trust.

    A trusted class from elsewhere need not subclass :class:`WordTokenizer`; it needs a ``load(path)``.
    """
    if name in TOKENIZER_CLASS_NAMES:
        return TOKENIZER_CLASS_NAMES[name]
    where = f"{folder / WordEmbeddings.config_file_name} key 'tokenizer_class'"
    if not isinstance(name, str) or "." not in name:
        raise ModelFormatError(f"{where} must name a tokenizer class, got {name!r}.")
    if not kwargs.get("trust_remote_code"):
        raise UntrustedCodeError(
            f"{where} names {name!r}, which is not a tokenizer embedstack knows. Loading it would run code from "
            "outside embedstack. Pass trust_remote_code=True if you trust this model."
        )
    return import_trusted_class(name, folder, where)
