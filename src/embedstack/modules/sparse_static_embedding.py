"""SparseStaticEmbedding: one weight per vocabulary token (e.g. IDF), the query side of inference-free SPLADE.

A text becomes a vocabulary-sized vector holding each present token's weight, with no transformer at all. In an
inference-free SPLADE model it is the query route of a Router whose document route is a fill-mask Transformer and
SpladePooling.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedstack.errors import ModelFormatError, ModelNotFoundError
from embedstack.fileio import read_json
from embedstack.modules.base import InputModule, module_dir, read_feature
from embedstack.registry import ST, register_module

IDF_FILE = "idf.json"
NAME = "SparseStaticEmbedding"


def _example() -> SparseStaticEmbedding:
    """A small instance on a word-level tokenizer built in memory (for the contract test)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "a", "first", "text", "and", "second", ",", "longer"]
    core = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]")
    tokenizer.model_max_length = 16
    return SparseStaticEmbedding(tokenizer, weight=torch.rand(len(words)))


@register_module(
    f"{ST}.sparse_encoder.modules.sparse_static_embedding.{NAME}",
    aliases=(
        f"{ST}.sparse_encoder.models.{NAME}",
        f"{ST}.sparse_encoder.models.{NAME}.{NAME}",
        f"{ST}.sparse_encoder.modules.{NAME}",
    ),
    example=_example,
)
class SparseStaticEmbedding(InputModule):
    """Text -> token ids (no special tokens) -> a (vocab,) vector: each present token's weight, zero elsewhere.

    When an earlier module already wrote ``sentence_embedding``, the result is multiplied into it.

    Args:
        tokenizer: A Hugging Face tokenizer (``AutoTokenizer``).
        weight: The (vocab,) weights, e.g. IDF values; all ones when None.
        frozen: Whether the weights are excluded from training (``requires_grad=False``).

    Example:
        >>> from tokenizers import Tokenizer, models, pre_tokenizers
        >>> from transformers import PreTrainedTokenizerFast
        >>> core = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "paris": 2, "rainy": 3}, unk_token="[UNK]"))
        >>> core.pre_tokenizer = pre_tokenizers.Whitespace()
        >>> tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]")
        >>> module = SparseStaticEmbedding(tokenizer, weight=torch.tensor([0.0, 0.0, 2.5, 1.5]), frozen=True)
        >>> module(module.preprocess(["paris rainy", "paris"]))["sentence_embedding"]
        tensor([[0.0000, 0.0000, 2.5000, 1.5000],
                [0.0000, 0.0000, 2.5000, 0.0000]])
    """

    config_keys: list[str] = ["frozen"]

    def __init__(self, tokenizer: Any, weight: torch.Tensor | None = None, frozen: bool = False) -> None:
        super().__init__()
        if not callable(tokenizer) or not hasattr(tokenizer, "get_vocab"):
            raise ValueError(
                f"{NAME} needs a Hugging Face tokenizer, got {type(tokenizer).__name__}. "
                "Load one with transformers.AutoTokenizer.from_pretrained(...)."
            )
        if not isinstance(frozen, bool):
            raise ValueError(f"{NAME} frozen must be true or false, got {frozen!r}.")
        vocab_size = len(tokenizer.get_vocab())
        weight = torch.ones(vocab_size) if weight is None else torch.as_tensor(weight)
        if weight.ndim != 1 or weight.shape[0] < vocab_size:
            raise ValueError(
                f"{NAME} weight must hold one value per token, shape ({vocab_size},), got {tuple(weight.shape)}."
            )
        if not weight.is_floating_point():
            weight = weight.float()
        self.tokenizer = tokenizer
        self.weight = nn.Parameter(weight, requires_grad=not frozen)
        self.frozen = frozen
        self.max_seq_length: int = tokenizer.model_max_length

    @property
    def num_dimensions(self) -> int:
        """The vocabulary size: the width of the output."""
        return int(self.weight.shape[0])

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Token ids (no special tokens), padded, truncated to ``max_seq_length``, with the attention mask."""
        if isinstance(inputs, str):  # one text, not its characters
            inputs = [inputs]
        if prompt:
            inputs = self._prepend_prompt(inputs, prompt)
        limit = {} if self.max_seq_length == self.tokenizer.model_max_length else {"max_length": self.max_seq_length}
        encoded = self.tokenizer(
            list(inputs), padding=True, truncation=True, return_tensors="pt", add_special_tokens=False, **limit
        )
        return dict(encoded)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Write ``sentence_embedding`` (batch, vocab): the weight of each token present, zero elsewhere."""
        input_ids = read_feature(features, "input_ids", NAME)  # (batch, tokens)
        mask = read_feature(features, "attention_mask", NAME)  # (batch, tokens)
        presence = torch.zeros(input_ids.shape[0], self.num_dimensions, dtype=self.weight.dtype, device=mask.device)
        presence.scatter_reduce_(1, input_ids, mask.to(presence.dtype), reduce="amax")  # 1 where a token is present
        embeddings = presence * self.weight  # (batch, vocab)
        previous = features.get("sentence_embedding")
        features["sentence_embedding"] = embeddings if previous is None else embeddings * previous
        return features

    def get_embedding_dimension(self) -> int:
        """The vocabulary size."""
        return self.num_dimensions

    def __repr__(self) -> str:
        tokenizer = type(self.tokenizer).__name__
        return f"{NAME}({self.get_config_dict()}, dim={self.num_dimensions}, tokenizer={tokenizer})"

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the tokenizer files, the weights and ``config.json``."""
        self.save_tokenizer(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.save_config(output_path)

    @classmethod
    def from_json(
        cls,
        json_path: str | os.PathLike[str],
        tokenizer: Any,
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **config: Any,
    ) -> SparseStaticEmbedding:
        """From a JSON object of token -> weight (``idf.json``): a file, or a folder holding ``idf.json``.

        Tokens the tokenizer lacks take its unknown token's id, as in sentence-transformers. The Hub options are
        accepted for compatibility and unused: download a Hub repository first (the model does that for its own).
        """
        path = _idf_file(json_path)
        idf = read_json(path)
        if not isinstance(idf, dict) or not idf:
            raise ModelFormatError(f"{path} must hold a non-empty JSON object of token -> weight.")
        return cls(tokenizer, weight=idf_weights(idf, tokenizer, path), **config)

    @classmethod
    def load(
        cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", **kwargs: Any
    ) -> SparseStaticEmbedding:
        """Load the tokenizer, ``config.json`` and the weights (or the ``idf.json`` the config's ``path`` names)."""
        folder = module_dir(model_name_or_path, subfolder)
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        where = folder / cls.config_file_name
        path = config.pop("path", None)
        unknown = sorted(set(config) - set(cls.config_keys))
        if unknown:
            raise ModelFormatError(f"{where} has keys {NAME} does not take: {unknown}. Expected: {cls.config_keys}.")
        tokenizer = _load_tokenizer(folder)
        try:
            if isinstance(path, str) and path.endswith(".json"):
                local = folder / path
                return cls.from_json(local if local.is_file() else path, tokenizer, **config)
            return cls(tokenizer, weight=_saved_weight(cls, folder, len(tokenizer.get_vocab())), **config)
        except ModelFormatError:
            raise
        except ValueError as exc:
            raise ModelFormatError(f"{where} holds invalid {NAME} settings: {exc}") from None


def idf_weights(idf: dict[str, Any], tokenizer: Any, source: Path | str = "the JSON") -> torch.Tensor:
    """The (vocab,) weights: each token's value at its id, zero elsewhere (for a repeated id, the last value)."""
    try:
        values = torch.tensor(list(idf.values()), dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise ModelFormatError(f"{source} must map each token to a number.") from None
    ids = tokenizer.convert_tokens_to_ids(list(idf))
    last_index = {token_id: index for index, token_id in enumerate(ids)}  # later entries overwrite, as assigned
    weight = torch.zeros(len(tokenizer.get_vocab()), dtype=torch.float32)
    weight[torch.tensor(list(last_index))] = values[torch.tensor(list(last_index.values()))]
    return weight


def _idf_file(json_path: str | os.PathLike[str]) -> Path:
    path = Path(json_path)
    if path.is_dir() and (path / IDF_FILE).is_file():
        return path / IDF_FILE
    if path.is_file():
        return path
    raise ModelNotFoundError(
        f"IDF JSON file not found at {json_path}: it is neither a file nor a folder holding {IDF_FILE}. Modules read "
        "local files only; for a Hub repository, download it first (huggingface_hub.snapshot_download(repo_id, "
        f"allow_patterns=['{IDF_FILE}'])) and pass the folder."
    )


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises OSError, ValueError and others for missing or damaged files
        detail = " ".join(str(exc).split())[:300]
        raise ModelFormatError(
            f"The tokenizer of {NAME} in {folder} could not be loaded ({type(exc).__name__}: {detail}). Restore the "
            "tokenizer files (tokenizer.json, tokenizer_config.json) from the original model."
        ) from None


def _saved_weight(cls: type[SparseStaticEmbedding], folder: Path, vocab_size: int) -> torch.Tensor:
    weights = cls.load_torch_weights(folder)
    if set(weights) != {"weight"}:
        raise ModelFormatError(f"The weights in {folder} must hold exactly 'weight', but hold {sorted(weights)}.")
    weight = weights["weight"]
    if tuple(weight.shape) != (vocab_size,):
        raise ModelFormatError(
            f"The weights in {folder} have shape {tuple(weight.shape)}, but its tokenizer has {vocab_size} tokens; "
            "the weights and the tokenizer files come from different models."
        )
    return weight
