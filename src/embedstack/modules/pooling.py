"""Pooling: token embeddings -> one sentence embedding, by one mode or several concatenated."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import torch

from embedstack.modules.base import Module
from embedstack.registry import ST, register_module

logger = logging.getLogger(__name__)

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
POOLING_MODES: tuple[str, ...] = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# The boolean flags sentence-transformers < 5 wrote, in the order their modes are concatenated.
LEGACY_POOLING_FLAGS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def unflatten(tokens: torch.Tensor, cu_seq_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded token embeddings and attention mask for a flattened batch.

    ``DataCollatorWithFlattening`` puts all sequences in one row with their boundaries in ``cu_seq_lens``; this
    returns ``(num_seqs, longest, dim)`` token embeddings and their ``(num_seqs, longest)`` attention mask.
    """
    flat = tokens.reshape(-1, tokens.shape[-1])  # (total_tokens, dim)
    bounds = cu_seq_lens.to(device=flat.device, dtype=torch.long)
    lengths = bounds[1:] - bounds[:-1]  # (num_seqs,)
    rows = torch.repeat_interleave(torch.arange(len(lengths), device=flat.device), lengths)
    columns = torch.arange(len(rows), device=flat.device) - torch.repeat_interleave(bounds[:-1], lengths)
    longest = int(lengths.max()) if len(lengths) else 0
    padded = flat.new_zeros(len(lengths), longest, flat.shape[-1])
    padded[rows, columns] = flat[: len(rows)]
    mask = torch.zeros(len(lengths), longest, dtype=torch.int64, device=flat.device)
    mask[rows, columns] = 1
    return padded, mask


def _prompt_length(value: Any) -> int:
    """The prompt's token count: an int, or (in training batches) a tensor repeating it per row."""
    if value is None:
        return 0
    if isinstance(value, torch.Tensor):
        return int(value.reshape(-1)[0]) if value.numel() else 0
    return int(value)


def pooling_mode_from_flags(flags: dict[str, Any]) -> str | tuple[str, ...]:
    """Turn legacy ``pooling_mode_*`` booleans into a mode (a str, or a tuple for several; "mean" for none)."""
    modes = tuple(mode for flag, mode in LEGACY_POOLING_FLAGS.items() if flags.get(flag))
    if not modes:
        return "mean"
    return modes[0] if len(modes) == 1 else modes


def _legacy_arguments(
    embedding_dimension: int | None, pooling_mode: Any, legacy_kwargs: dict[str, Any]
) -> tuple[int | None, Any]:
    """``(embedding_dimension, pooling_mode)`` with the spellings of sentence-transformers < 5 applied.

    ``word_embedding_dimension`` and the ``pooling_mode_*`` flags still work, with the warning the reference gives
    for each (a flag sets the modes only when ``pooling_mode`` is left at "mean").
    """
    width = legacy_kwargs.pop("word_embedding_dimension", None)
    unknown = set(legacy_kwargs) - set(LEGACY_POOLING_FLAGS)
    if unknown:
        raise TypeError(f"Pooling got unexpected arguments {sorted(unknown)}")
    if width is not None:
        logger.warning(
            "The `word_embedding_dimension` argument was renamed and is deprecated; use `embedding_dimension`."
        )
        embedding_dimension = embedding_dimension if embedding_dimension is not None else width
    if legacy_kwargs:
        warnings.warn(
            f"The {', '.join(f'`{flag}`' for flag in legacy_kwargs)} argument(s) are deprecated; pass "
            "pooling_mode (a mode such as 'mean', or a list of modes) instead.",
            FutureWarning,
            stacklevel=3,
        )
        if pooling_mode == "mean":
            pooling_mode = pooling_mode_from_flags(legacy_kwargs)
    return embedding_dimension, pooling_mode


@register_module(f"{ST}.sentence_transformer.modules.pooling.Pooling", legacy=True)
class Pooling(Module):
    """Pool token embeddings into a sentence embedding.

    Args:
        embedding_dimension: Width of the token embeddings.
        pooling_mode: One of ``POOLING_MODES``, or a list of them whose outputs are concatenated in order.
        include_prompt: When False, the prompt's tokens (``features["prompt_length"]``) are left out.

    Example:
        >>> pooling = Pooling(384, pooling_mode=["mean", "max"])
        >>> pooling.get_embedding_dimension()
        768
    """

    POOLING_MODES: tuple[str, ...] = POOLING_MODES
    config_keys = ["embedding_dimension", "pooling_mode", "include_prompt"]
    config_key_renames = {"word_embedding_dimension": "embedding_dimension"}

    def __init__(
        self,
        embedding_dimension: int | None = None,
        pooling_mode: PoolingMode | list[PoolingMode] | tuple[PoolingMode, ...] = "mean",
        include_prompt: bool = True,
        **legacy_kwargs: Any,
    ) -> None:
        super().__init__()
        embedding_dimension, requested = _legacy_arguments(embedding_dimension, pooling_mode, legacy_kwargs)
        if isinstance(embedding_dimension, bool) or not isinstance(embedding_dimension, int) or embedding_dimension < 1:
            raise ValueError(f"Pooling embedding_dimension must be a positive int, got {embedding_dimension!r}")
        modes = (requested,) if isinstance(requested, str) else tuple(requested)
        if not modes:
            raise ValueError(f"Pooling needs at least one pooling_mode; choose from {list(POOLING_MODES)}")
        for mode in modes:
            if mode not in POOLING_MODES:
                raise ValueError(
                    f"Unknown pooling_mode {mode!r} (Invalid pooling mode). Valid pooling modes are: "
                    f"{list(POOLING_MODES)}, or a list of them (their outputs are concatenated in order)."
                )
        self.embedding_dimension = embedding_dimension
        # One mode is kept as its name, several as a tuple (as sentence-transformers does; saved as a JSON list).
        self.pooling_mode: str | tuple[str, ...] = modes[0] if len(modes) == 1 else modes
        self.include_prompt = bool(include_prompt)

    @property
    def modes(self) -> tuple[str, ...]:
        """The pooling modes, in output order."""
        return (self.pooling_mode,) if isinstance(self.pooling_mode, str) else tuple(self.pooling_mode)

    @property
    def pooling_output_dimension(self) -> int:
        """The width of the sentence embedding: ``embedding_dimension`` times the number of modes."""
        return self.embedding_dimension * len(self.modes)

    def get_embedding_dimension(self) -> int:
        """The token embedding width times the number of modes."""
        return self.pooling_output_dimension

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Add ``sentence_embedding``: each mode's pooling of ``token_embeddings`` (padded or flattened)."""
        mask: torch.Tensor | None
        if "cu_seq_lens_q" in features:  # a flattened batch: (1, total_tokens, dim) with sequence boundaries
            tokens, mask = unflatten(features["token_embeddings"], features["cu_seq_lens_q"])
        else:
            tokens = features["token_embeddings"]  # (batch, seq, dim)
            mask = features.get("attention_mask")
            if mask is None or mask.shape[-1] != tokens.shape[1]:
                mask = torch.ones(tokens.shape[:-1], dtype=torch.int64, device=tokens.device)
        pad_lengths = mask.to(torch.int32).argmax(dim=1)  # (batch,) leading pad tokens when left-padded
        pool_mask = mask
        prompt_length = _prompt_length(features.get("prompt_length")) if not self.include_prompt else 0
        if prompt_length:
            positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # (1, seq)
            pool_mask = mask.masked_fill(positions < (pad_lengths + prompt_length).unsqueeze(1), 0)
        pooled = [self._pool(mode, tokens, pool_mask, pad_lengths, features) for mode in self.modes]
        features["sentence_embedding"] = torch.cat(pooled, dim=-1)  # (batch, dim * modes)
        return features

    @staticmethod
    def _pool(
        mode: str, tokens: torch.Tensor, mask: torch.Tensor, pad_lengths: torch.Tensor, features: dict[str, Any]
    ) -> torch.Tensor:
        acc_dtype = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        if mode == "cls":
            if features.get("cls_token_embeddings") is not None:
                return features["cls_token_embeddings"]
            first = mask.to(torch.int32).argmax(dim=1)  # (batch,)
            return tokens[torch.arange(tokens.shape[0], device=tokens.device), first]
        if mode == "max":
            masked = tokens.masked_fill(mask.unsqueeze(-1) == 0, float("-inf"))
            return masked.max(dim=1).values
        if mode in ("mean", "mean_sqrt_len_tokens"):
            weights = mask.unsqueeze(-1).to(tokens.dtype)  # (batch, seq, 1)
            summed = (tokens * weights).sum(dim=1, dtype=acc_dtype)
            if "token_weights_sum" in features:
                count = features["token_weights_sum"].unsqueeze(-1).to(acc_dtype)
            else:
                count = weights.sum(dim=1, dtype=acc_dtype)
            count = count.clamp(min=1e-9)
            denominator = count if mode == "mean" else count.sqrt()
            return (summed / denominator).to(tokens.dtype)
        if mode == "weightedmean":
            positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=acc_dtype)
            weights = mask.unsqueeze(-1).to(acc_dtype) * (positions.view(1, -1, 1) - pad_lengths.view(-1, 1, 1))
            summed = (tokens * weights).sum(dim=1)
            if "token_weights_sum" in features:
                total = features["token_weights_sum"].unsqueeze(-1).to(acc_dtype)
            else:
                total = weights.sum(dim=1)
            return (summed / total.clamp(min=1e-9)).to(tokens.dtype)
        # lasttoken: the last non-masked position, with left or right padding.
        seq_len = tokens.shape[1]
        values, from_end = mask.flip(1).max(dim=1)
        from_end = torch.where(values == 0, seq_len - 1, from_end)
        last = seq_len - from_end - 1  # (batch,)
        masked = tokens * mask.unsqueeze(-1).to(tokens.dtype)
        return masked[torch.arange(tokens.shape[0], device=tokens.device), last]

    def legacy_config(self) -> tuple[str | None, dict[str, Any]]:
        """sentence-transformers < 5 wrote one boolean flag per mode and ``word_embedding_dimension``."""
        legacy: dict[str, Any] = {"word_embedding_dimension": self.embedding_dimension}
        legacy.update({flag: mode in self.modes for flag, mode in LEGACY_POOLING_FLAGS.items()})
        legacy["include_prompt"] = self.include_prompt
        return "config.json", legacy

    @classmethod
    def adapt_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The config, with legacy ``pooling_mode_*`` flags turned into ``pooling_mode``."""
        flags = {key: config.pop(key) for key in list(config) if key in LEGACY_POOLING_FLAGS}
        if "pooling_mode" not in config and flags:
            config["pooling_mode"] = pooling_mode_from_flags(flags)
        return config
