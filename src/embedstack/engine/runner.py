"""Running inputs through a model: dedupe, tokenize once, batch by token length, restore input order.

A model is an :class:`~embedstack.engine.protocol.Encoder`; when it has a token batcher (the Transformer input
module is one), inputs are tokenized once, ordered by token count and cut into batches under a token budget.
Otherwise batches are formed by character length and preprocessed one by one, as sentence-transformers does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from embedstack.engine.batching import (
    dedupe,
    fixed_size_batches,
    input_length,
    longest_first,
    token_budget_batches,
)
from embedstack.engine.pass_size import default_max_batch_tokens
from embedstack.engine.protocol import Encoder
from embedstack.engine.tokenized import TokenizedTexts

logger = logging.getLogger(__name__)

OutputValue = Literal["sentence_embedding", "token_embeddings", "scores", "sparse_embedding"] | None
# One row per input: the outputs are one stacked tensor ("sparse_embedding": a sparse COO one, made per batch).
ROW_OUTPUTS = ("sentence_embedding", "scores", "sparse_embedding")
UNTOKENIZED_BATCH_SIZE = 32  # rows per batch for inputs the model cannot tokenize ahead (images, audio, ...)


@dataclass
class EncodePlan:
    """What to compute for each input; filled by ``SentenceTransformer.encode`` (``CrossEncoder.predict``: scores)."""

    prompt: str | None = None
    batch_size: int | None = None  # a row cap; None: the token budget alone decides the rows
    max_batch_tokens: int | None = None  # None: default_max_batch_tokens for the device and the model's width
    output_value: OutputValue = "sentence_embedding"
    normalize_embeddings: bool = False
    truncate_dim: int | None = None
    to_cpu: bool = True
    dedupe: bool = True
    max_active_dims: int | None = None  # "sparse_embedding": keep each row's largest weights only
    device: torch.device | None = None
    progress: Any = None  # a tqdm-like object updated with the number of inputs done
    preprocess_kwargs: dict[str, Any] = field(default_factory=dict)  # for the input module's preprocess
    module_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)  # forward keywords, by module name
    forward: Callable[..., dict[str, Any]] | None = None  # the pass to run instead of the model's own (same outputs)


@dataclass
class EncodeStats:
    """Work done for one call: how much of it was padding."""

    inputs: int = 0
    unique_inputs: int = 0
    batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0

    @property
    def padding_overhead(self) -> float:
        """Padded over real tokens, minus one (0.0 means no padding)."""
        return self.padded_tokens / self.real_tokens - 1 if self.real_tokens else 0.0


@dataclass
class EncodeResult:
    """Per-input outputs in input order, which inputs the tokenizer truncated, and work statistics."""

    outputs: torch.Tensor | list[Any]
    truncated: np.ndarray
    stats: EncodeStats

    @property
    def embeddings(self) -> torch.Tensor:
        """The outputs as one (N, D) tensor: what a plan for "sentence_embedding" gives."""
        if not isinstance(self.outputs, torch.Tensor):
            raise TypeError("These outputs are per-input values (token embeddings or feature dicts), not one tensor.")
        return self.outputs


@dataclass
class Prepared:
    """Inputs deduplicated and, where the model allows, tokenized: ready to batch."""

    unique: list[Any]
    inverse: np.ndarray
    tokenized: TokenizedTexts | None  # None: the model preprocesses each batch itself


def prepare(model: Encoder, inputs: list[Any], plan: EncodePlan) -> Prepared:
    """Dedupe and tokenize ``inputs`` (safe to run in a background thread while the model runs)."""
    if plan.dedupe:
        unique, inverse = dedupe(inputs)
    else:
        unique, inverse = list(inputs), np.arange(len(inputs))
    batcher = model.token_batcher
    tokenized = (
        batcher.tokenize_unpadded(unique, prompt=plan.prompt, **plan.preprocess_kwargs) if batcher and unique else None
    )
    return Prepared(unique, inverse, tokenized)


def run(model: Encoder, inputs: list[Any], plan: EncodePlan) -> EncodeResult:
    """Encode ``inputs`` with ``model``."""
    return run_prepared(model, prepare(model, inputs, plan), plan)


@torch.inference_mode()
def run_prepared(model: Encoder, prepared: Prepared, plan: EncodePlan) -> EncodeResult:
    """Batch, run and restore the input order of ``prepared`` inputs."""
    unique, tokenized = prepared.unique, prepared.tokenized
    stats = EncodeStats(inputs=len(prepared.inverse), unique_inputs=len(unique))
    truncated = np.zeros(len(unique), dtype=bool)
    if tokenized is not None:
        truncated[:] = tokenized.truncated
        order = longest_first(tokenized.lengths)
        budget = pass_budget(model, plan)
        batches = token_budget_batches(order, tokenized.lengths, max_batch_tokens=budget, batch_size=plan.batch_size)
    else:
        order = longest_first(np.fromiter((input_length(x) for x in unique), dtype=np.int64, count=len(unique)))
        batches = fixed_size_batches(order, plan.batch_size or UNTOKENIZED_BATCH_SIZE)
    chunks: list[Any] = []
    copies = np.bincount(prepared.inverse, minlength=len(unique))  # inputs each unique input stands for
    batcher = model.token_batcher if tokenized is not None else None
    # Through the model's __call__ (forward hooks, compile), with the keywords the modules take, as one dict.
    forward_kwargs = {key: value for keywords in plan.module_kwargs.values() for key, value in keywords.items()}
    forward = plan.forward or model
    for indices in batches:
        if batcher is not None:
            features = batcher.collate(tokenized, indices)
        else:
            features = model.preprocess_batch(
                [unique[i] for i in indices], prompt=plan.prompt, **plan.preprocess_kwargs
            )
            flags = features.pop("truncated", None)
            if flags is not None:
                truncated[indices] = flags.cpu().numpy()
        _count(stats, features, len(indices))
        features = forward(_to_device(features, plan.device), **forward_kwargs)
        chunks.append(_batch_outputs(features, len(indices), plan))
        if plan.progress is not None:
            plan.progress.update(int(copies[indices].sum()))
    restore = np.empty(len(order), dtype=np.int64)
    restore[order] = np.arange(len(order))
    take = restore[prepared.inverse]  # position of each input's output in the batch order
    outputs: torch.Tensor | list[Any]
    if plan.output_value in ROW_OUTPUTS:
        stacked = torch.cat(chunks) if chunks else torch.empty(0)
        if len(take):
            index = torch.from_numpy(take).to(stacked.device)
            stacked = stacked.index_select(0, index) if stacked.is_sparse else stacked[index]
        outputs = stacked
    else:
        items = [item for chunk in chunks for item in chunk]
        outputs = [_copy(items[i]) for i in take]
    return EncodeResult(outputs, truncated[prepared.inverse], stats)


def pass_budget(model: Encoder, plan: EncodePlan) -> int:
    """Padded tokens per pass: the call's ``max_batch_tokens``, else the device's default for the model's width."""
    return plan.max_batch_tokens or default_max_batch_tokens(plan.device, _width(model))


def _width(model: Encoder) -> int | None:
    """The hidden size of the model's token batcher (its input module), which sets the CPU pass size."""
    batcher = model.token_batcher
    try:
        return batcher.get_embedding_dimension() if batcher is not None else None
    except ValueError:  # a backbone whose config names no width: the default pass size
        return None


def _count(stats: EncodeStats, features: dict[str, Any], rows: int) -> None:
    stats.batches += 1
    mask = features.get("attention_mask")
    if isinstance(mask, torch.Tensor) and mask.ndim == 2:
        stats.real_tokens += int(mask.sum())
        stats.padded_tokens += mask.numel()


def _copy(item: Any) -> Any:
    return dict(item) if isinstance(item, dict) else item


def _batch_outputs(features: dict[str, Any], batch_len: int, plan: EncodePlan) -> Any:
    if plan.truncate_dim is not None and "sentence_embedding" in features:
        features["sentence_embedding"] = features["sentence_embedding"][..., : plan.truncate_dim]
    if plan.output_value == "sentence_embedding":
        embeddings = features["sentence_embedding"]  # (batch, dim)
        if plan.normalize_embeddings:
            embeddings = F.normalize(embeddings, p=2, dim=1)
        return embeddings.cpu() if plan.to_cpu else embeddings
    if plan.output_value == "sparse_embedding":  # a sparse encoder's (batch, vocab) weights, kept sparse
        weights = features["sentence_embedding"]
        if plan.max_active_dims is not None:
            weights = keep_largest(weights, plan.max_active_dims)
        weights = weights.to_sparse()  # COO; the dense batch is dropped with this pass
        return weights.cpu() if plan.to_cpu else weights
    if plan.output_value == "scores":  # a cross-encoder's (batch, labels) logits
        scores = features["scores"]
        return scores.cpu() if plan.to_cpu else scores
    if plan.output_value == "token_embeddings":
        rows = []
        for tokens, mask in zip(features["token_embeddings"], features["attention_mask"]):  # (seq, dim), (seq,)
            nonzero = torch.nonzero(mask).flatten()
            last = int(nonzero[-1]) if len(nonzero) else 0
            rows.append(tokens[: last + 1])
        return rows
    return [
        {
            name: value[index]
            if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == batch_len
            else value
            for name, value in features.items()
        }
        for index in range(batch_len)
    ]


def keep_largest(weights: torch.Tensor, k: int) -> torch.Tensor:
    """``weights`` (rows, dim) with all but each row's ``k`` largest values (by magnitude) set to zero."""
    if k >= weights.shape[-1]:
        return weights
    _, indices = torch.topk(weights.abs(), k, dim=-1)
    return torch.zeros_like(weights).scatter_(-1, indices, weights.gather(-1, indices))


def _to_device(features: dict[str, Any], device: torch.device | None) -> dict[str, Any]:
    if device is None or device.type == "cpu":
        return features
    pin = device.type == "cuda"
    return {
        key: (value.pin_memory() if pin else value).to(device, non_blocking=pin)
        if isinstance(value, torch.Tensor)
        else value
        for key, value in features.items()
    }
