"""MaxSim, the late-interaction score of multi-vector embeddings (ColBERT).

For each query token, the similarity of the closest document token, summed over the query's tokens.

Inputs are token-embedding sets of any lengths (a list of ``(tokens, dim)`` arrays, a padded
``(batch, tokens, dim)`` tensor with masks, or one ``(tokens, dim)`` set); the scores are computed in chunks
whose padded size stays under an element budget, so a large document set never builds one huge tensor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

DEFAULT_CHUNK_ELEMENTS = 100_000_000  # padded queries + documents + token scores per chunk (~400 MB in fp32)


def maxsim(
    a: Any,
    b: Any,
    a_mask: Any = None,
    b_mask: Any = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The (len(a), len(b)) MaxSim scores: ``res[i, j] = sum_t max_u a[i][t] . b[j][u]``.

    Args:
        a: Query token embeddings: a list of (tokens, dim) arrays or tensors, a (batch, tokens, dim) tensor,
            or one (tokens, dim) set.
        b: Document token embeddings, in the same forms.
        a_mask: Which query tokens count (0/False: left out of the sum), per query; shaped like ``a`` without dim.
        b_mask: Which document tokens count (0/False: never the maximum), per document.
        chunk_elements: The element budget of one chunk (default 100 million).
        length_normalize: Divide each score by its query's token count (MeanMaxSim, about [-1, 1]).
        device: Where to compute (default: the documents' device); the scores come back there.

    Returns:
        float32 scores on the documents' device.

    >>> queries = [torch.tensor([[1.0, 0.0], [0.0, 1.0]])]
    >>> maxsim(queries, [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8], [0.0, 1.0]])])
    tensor([[1.0000, 1.6000]])
    """
    queries, documents, home, where = _sides(a, b, a_mask, b_mask, device)
    scores = torch.zeros(len(queries), len(documents), dtype=torch.float32, device=home)
    if not queries or not documents:
        return scores
    budget = chunk_elements or DEFAULT_CHUNK_ELEMENTS
    query_width = max(len(query) for query in queries)
    for q_start, q_end in _ranges([query_width] * len(queries), budget // 2):
        query_block, query_real = _padded(queries[q_start:q_end], where)
        per_document = (q_end - q_start) * query_block.shape[1]  # token scores per document token
        for d_start, d_end in _ranges([len(d) * (per_document + 1) for d in documents], budget // 2):
            document_block, document_real = _padded(documents[d_start:d_end], where)
            tokens = torch.einsum("qtd,bud->qbtu", query_block, document_block)  # (queries, docs, q_tok, d_tok)
            tokens = tokens.masked_fill(~document_real[None, :, None, :], float("-inf"))
            best = tokens.amax(dim=-1).masked_fill(~query_real[:, None, :], 0.0)  # (queries, docs, q_tok)
            scores[q_start:q_end, d_start:d_end] = best.sum(dim=-1).to(home)
    return _normalized(scores, queries, length_normalize)


def maxsim_pairwise(
    a: Any,
    b: Any,
    a_mask: Any = None,
    b_mask: Any = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """The (N,) MaxSim scores of ``a[i]`` with ``b[i]``; arguments as in :func:`maxsim`.

    >>> maxsim_pairwise([torch.tensor([[1.0, 0.0]])], [torch.tensor([[0.6, 0.8], [1.0, 0.0]])])
    tensor([1.])
    """
    queries, documents, home, where = _sides(a, b, a_mask, b_mask, device)
    if len(queries) != len(documents):
        raise ValueError(f"maxsim_pairwise scores a[i] with b[i]; a has {len(queries)} items and b {len(documents)}.")
    scores = torch.zeros(len(queries), dtype=torch.float32, device=home)
    sizes = [len(query) * (len(document) + 1) + len(document) for query, document in zip(queries, documents)]
    for start, end in _ranges(sizes, chunk_elements or DEFAULT_CHUNK_ELEMENTS):
        query_block, query_real = _padded(queries[start:end], where)
        document_block, document_real = _padded(documents[start:end], where)
        tokens = torch.einsum("ntd,nud->ntu", query_block, document_block)  # (pairs, q_tok, d_tok)
        tokens = tokens.masked_fill(~document_real[:, None, :], float("-inf"))
        best = tokens.amax(dim=-1).masked_fill(~query_real, 0.0)
        scores[start:end] = best.sum(dim=-1).to(home)
    return _normalized(scores, queries, length_normalize)


def _sides(
    a: Any, b: Any, a_mask: Any, b_mask: Any, device: str | torch.device | None
) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.device, torch.device]:
    """The query and document token sets, the documents' device (where scores go) and the device to compute on."""
    home = _device_of(b) or _device_of(a) or torch.device("cpu")
    where = torch.device(device) if device is not None else home
    return token_sets(a, a_mask, "a_mask"), token_sets(b, b_mask, "b_mask"), home, where


def token_sets(side: Any, mask: Any, name: str) -> list[torch.Tensor]:
    """Each item's (tokens, dim) float32 embeddings, masked tokens dropped."""
    if isinstance(side, (np.ndarray, torch.Tensor)):
        single = side.ndim == 2
        raw = [side] if single else list(side)
    else:
        raw, single = list(side), False
    items = [torch.as_tensor(item) for item in raw]
    if mask is None:
        return [item.float() for item in items]
    masks = [mask] if single else list(mask)
    if len(masks) != len(items):
        raise ValueError(f"{name} has {len(masks)} rows for {len(items)} items; give one mask per item.")
    kept = []
    for index, (item, row) in enumerate(zip(items, masks)):
        row = torch.as_tensor(row, device=item.device)[: len(item)]
        if len(row) < len(item) and bool((item[len(row) :] != 0).any()):
            raise ValueError(f"{name} row {index} covers {len(row)} of its item's {len(item)} tokens.")
        kept.append(item[: len(row)][row.bool()].float())
    return kept


def _padded(items: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A (n, width, dim) block of ``items`` padded with zeros, and its (n, width) mask of real tokens."""
    width = max(1, max(len(item) for item in items))
    dim = items[0].shape[-1]
    block = torch.zeros(len(items), width, dim, dtype=torch.float32, device=device)
    real = torch.zeros(len(items), width, dtype=torch.bool, device=device)
    for row, item in enumerate(items):
        block[row, : len(item)] = item.to(device)
        real[row, : len(item)] = True
    return block, real


def _ranges(sizes: list[int], budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive index ranges whose ``sizes`` add up to at most ``budget`` (at least one item each)."""
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and total + size > budget:
            yield start, index
            start, total = index, 0
        total += size
    if start < len(sizes):
        yield start, len(sizes)


def _normalized(scores: torch.Tensor, queries: list[torch.Tensor], length_normalize: bool) -> torch.Tensor:
    if not length_normalize:
        return scores
    counts = torch.tensor([max(1, len(query)) for query in queries], dtype=torch.float32, device=scores.device)
    return scores / (counts[:, None] if scores.ndim == 2 else counts)


def _device_of(side: Any) -> torch.device | None:
    if isinstance(side, torch.Tensor):
        return side.device
    if isinstance(side, (list, tuple)) and side and isinstance(side[0], torch.Tensor):
        return side[0].device
    return None
