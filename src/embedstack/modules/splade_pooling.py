"""SpladePooling: a masked language model's token logits into one vocabulary-sized, mostly zero vector per input."""

from __future__ import annotations

import itertools
from typing import Any

import torch

from embedstack.modules.base import Module
from embedstack.registry import ST, register_module

POOLING_STRATEGIES = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")
DEFAULT_CHUNK_TOKENS = 256  # logits pooled per step, per row: (batch, 256, vocab) at a time bounds peak memory


@register_module(
    f"{ST}.sparse_encoder.modules.splade_pooling.SpladePooling",
    aliases=(  # sentence-transformers 5.0-5.3 wrote the "models" spelling into modules.json and router_config.json
        f"{ST}.sparse_encoder.models.SpladePooling",
        f"{ST}.sparse_encoder.models.SpladePooling.SpladePooling",
        f"{ST}.sparse_encoder.modules.SpladePooling",
    ),
    example=lambda: SpladePooling("sum", "log1p_relu", embedding_dimension=32, chunk_size=2),
)
class SpladePooling(Module):
    """SPLADE pooling: ``log(1 + relu(logits))`` (``log1p_relu``: log1p twice), then max or sum over the tokens.

    Reads ``features["token_embeddings"]`` (an MLM's logits, (batch, tokens, vocab)) and writes
    ``features["sentence_embedding"]`` (batch, vocab). Padding tokens are left out. The tokens are pooled
    ``chunk_size`` at a time (by default 256), so the transformed copy of the logits never exceeds one chunk.

    Args:
        pooling_strategy: "max" (SPLADE v2 and later) or "sum" (the original SPLADE).
        activation_function: "relu" or "log1p_relu" (OpenSearch's SPLADE models).
        embedding_dimension: The vocabulary size (set from the logits on the first pass when None).
        chunk_size: Tokens pooled per step (None: the default; not saved, as in the reference).

    Example:
        >>> pooling = SpladePooling("max")
        >>> logits = torch.tensor([[[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]]])  # (batch 1, 2 tokens, vocab 3)
        >>> pooling({"token_embeddings": logits, "attention_mask": torch.ones(1, 2)})["sentence_embedding"]
        tensor([[1.3863, 0.0000, 0.4055]])
    """

    SPLADE_POOLING_MODES = POOLING_STRATEGIES
    SPLADE_ACTIVATION = list(ACTIVATIONS)
    config_keys = ["pooling_strategy", "activation_function", "embedding_dimension"]
    config_key_renames = {"word_embedding_dimension": "embedding_dimension"}

    def __init__(
        self,
        pooling_strategy: str = "max",
        activation_function: str = "relu",
        embedding_dimension: int | None = None,
        chunk_size: int | None = None,
        **legacy_kwargs: Any,
    ) -> None:
        super().__init__()
        if "word_embedding_dimension" in legacy_kwargs and embedding_dimension is None:
            embedding_dimension = legacy_kwargs.pop("word_embedding_dimension")
        if legacy_kwargs:
            raise TypeError(f"SpladePooling got unknown arguments {sorted(legacy_kwargs)}.")
        if pooling_strategy not in POOLING_STRATEGIES:
            raise ValueError(
                f"SpladePooling pooling_strategy must be one of {list(POOLING_STRATEGIES)}, got {pooling_strategy!r}."
            )
        if activation_function not in ACTIVATIONS:
            raise ValueError(
                f"SpladePooling activation_function must be one of {list(ACTIVATIONS)}, got {activation_function!r}."
            )
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension
        self.chunk_size = chunk_size

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``sentence_embedding``: the pooled SPLADE weights of ``token_embeddings``.

        Padded logits (batch, tokens, vocab) with ``attention_mask``, or flat ones (1, total tokens, vocab) with
        ``cu_seq_lens_q`` (the sequence boundaries of flash-attention unpadding), as the reference takes them.
        """
        if "cu_seq_lens_q" in features:
            features["sentence_embedding"] = self._pool_flat(features["token_embeddings"], features["cu_seq_lens_q"])
            if self.embedding_dimension is None:
                self.embedding_dimension = features["sentence_embedding"].shape[-1]
            return features
        logits = features["token_embeddings"]  # (batch, tokens, vocab)
        mask = features.get("attention_mask")
        batch, tokens, vocab = logits.shape
        if mask is None:
            mask = torch.ones(batch, tokens, dtype=logits.dtype, device=logits.device)
        mask = mask.unsqueeze(-1).to(logits.dtype)
        step = self.chunk_size if self.chunk_size and self.chunk_size > 0 else DEFAULT_CHUNK_TOKENS
        pooled = torch.zeros(batch, vocab, dtype=logits.dtype, device=logits.device)
        for start in range(0, tokens, step):
            weights = self._weights(logits[:, start : start + step] * mask[:, start : start + step])
            if self.pooling_strategy == "max":
                pooled = torch.maximum(pooled, weights.amax(dim=1))
            else:
                pooled += weights.sum(dim=1)
        if self.embedding_dimension is None:
            self.embedding_dimension = vocab
        features["sentence_embedding"] = pooled
        return features

    def _pool_flat(self, logits: torch.Tensor, cu_seq_lens: torch.Tensor) -> torch.Tensor:
        """(sequences, vocab) from flat (1, total tokens, vocab) logits: each sequence's segment pooled on its own."""
        flat = logits.squeeze(0)
        bounds = cu_seq_lens.tolist()
        rows = []
        for start, end in zip(bounds[:-1], bounds[1:]):
            # relu() copies first: the segments are views of the caller's tensor, which must stay unchanged
            weights = self._weights(flat[start:end].relu())
            rows.append(weights.amax(dim=0) if self.pooling_strategy == "max" else weights.sum(dim=0))
        return torch.stack(rows)

    @torch.no_grad()
    def pool_decoded(
        self, hidden: torch.Tensor, mask: torch.Tensor | None, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        """(batch, vocab): what :meth:`forward` gives for the logits ``hidden @ weight.T + bias``, without them.

        ``hidden`` (batch, tokens, width) is the MLM head's input for the decoder ``weight`` (vocab, width) and
        ``bias``. The real tokens (``mask``) are projected ``chunk_size`` (default 256) at a time, whole inputs per
        chunk where they fit, so memory holds one chunk's logits, never the batch's; padding is never projected.
        For max pooling the bias and the activation apply once per input after the maximum (both are monotonic, so
        the result is the same); sum pooling activates each chunk in place.
        """
        batch, tokens, _ = hidden.shape
        packed = hidden[mask.bool()] if mask is not None else hidden.reshape(batch * tokens, -1)
        lengths = mask.sum(dim=1).tolist() if mask is not None else [tokens] * batch
        bounds = [0, *itertools.accumulate(int(n) for n in lengths)]  # input i's tokens: packed[bounds[i]:bounds[i+1]]
        step = self.chunk_size if self.chunk_size and self.chunk_size > 0 else DEFAULT_CHUNK_TOKENS
        is_max = self.pooling_strategy == "max"
        # max: the raw maximum first; the bias and the activation follow once (an input without tokens ends at zero)
        pooled = torch.full((batch, weight.shape[0]), -torch.inf if is_max else 0.0, dtype=hidden.dtype)
        pooled = pooled.to(hidden.device)
        first, start = 0, 0
        while start < bounds[-1]:
            fits = [b for b in bounds if start < b <= start + step]  # whole inputs where they fit, else a piece
            end = fits[-1] if fits else start + step
            part = packed[start:end]
            logits = part @ weight.t() if is_max or bias is None else torch.addmm(bias, part, weight.t())
            if not is_max:
                logits = self._weights(logits)
            while bounds[first + 1] <= start:  # the first input with tokens in this chunk
                first += 1
            row = first
            while row < batch and bounds[row] < end:
                piece = logits[max(bounds[row], start) - start : min(bounds[row + 1], end) - start]
                if len(piece):
                    if is_max:
                        torch.maximum(pooled[row], piece.amax(dim=0), out=pooled[row])
                    else:
                        pooled[row] += piece.sum(dim=0)
                row += 1
            start = end
        if is_max:
            if bias is not None:
                pooled += bias
            pooled = self._weights(pooled)
        if self.embedding_dimension is None:
            self.embedding_dimension = weight.shape[0]
        return pooled

    def _weights(self, logits: torch.Tensor) -> torch.Tensor:
        inplace = not (self.training and torch.is_grad_enabled())
        weights = logits.relu_() if inplace else logits.relu()
        weights = weights.log1p_() if inplace else weights.log1p()
        if self.activation_function == "log1p_relu":
            weights = weights.log1p_() if inplace else weights.log1p()
        return weights

    def get_embedding_dimension(self) -> int | None:
        """The vocabulary size (None until known)."""
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write ``config.json``."""
        self.save_config(output_path)

    def __repr__(self) -> str:
        return f"SpladePooling({self.get_config_dict()})"
