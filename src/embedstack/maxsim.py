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
EMPTY_SCORE = -1e9  # a document with no token to score (all masked): last in any ranking, finite in a loss


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
    dim = queries[0].shape[-1]
    document_width = max(len(document) for document in documents)
    # A query chunk holds its padded queries and, per query token, one score per token of the widest document.
    query_ranges = _ranges([len(q) for q in queries], document_width + dim, budget - document_width * dim)
    for q_start, q_end in query_ranges:
        query_block, query_real = _padded(queries[q_start:q_end], where)
        per_token = query_block.shape[0] * query_block.shape[1] + dim  # scores + the embedding, per doc token
        for d_start, d_end in _ranges([len(d) for d in documents], per_token, budget - query_block.numel()):
            document_block, document_real = _padded(documents[d_start:d_end], where)
            tokens = torch.einsum("qtd,bud->qbtu", query_block, document_block)  # (queries, docs, q_tok, d_tok)
            best = _best_per_query_token(tokens, document_real[None, :, None, :])  # (queries, docs, q_tok)
            totals = best.masked_fill(~query_real[:, None, :], 0.0).sum(dim=-1)
            scores[q_start:q_end, d_start:d_end] = totals.masked_fill(~document_real.any(dim=-1), EMPTY_SCORE).to(home)
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
    query_width, dim = max((len(q) for q in queries), default=0), queries[0].shape[-1] if queries else 1
    widths = [len(document) for document in documents]
    for start, end in _ranges(widths, query_width + dim, chunk_elements or DEFAULT_CHUNK_ELEMENTS, query_width * dim):
        query_block, query_real = _padded(queries[start:end], where)
        document_block, document_real = _padded(documents[start:end], where)
        tokens = torch.einsum("ntd,nud->ntu", query_block, document_block)  # (pairs, q_tok, d_tok)
        best = _best_per_query_token(tokens, document_real[:, None, :])
        totals = best.masked_fill(~query_real, 0.0).sum(dim=-1)
        scores[start:end] = totals.masked_fill(~document_real.any(dim=-1), EMPTY_SCORE).to(home)
    return _normalized(scores, queries, length_normalize)


def _best_per_query_token(tokens: torch.Tensor, document_real: torch.Tensor) -> torch.Tensor:
    """Each query token's best document-token score; padding never wins (it gets the dtype's minimum)."""
    return tokens.masked_fill(~document_real, torch.finfo(tokens.dtype).min).amax(dim=-1)


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
        if isinstance(side, (np.ndarray, torch.Tensor)):  # padded: all-zero rows are the padding
            return [item[item.ne(0).any(dim=-1)].float() for item in items]
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


def _ranges(widths: list[int], per_token: int, budget: int, per_item: int = 0) -> Iterator[tuple[int, int]]:
    """Consecutive ranges of items (at least one each) whose padded cost stays within ``budget`` elements.

    An item padded to its range's widest item costs ``per_token`` elements per token plus ``per_item``.
    """
    start, width = 0, 0
    for index, item_width in enumerate(widths):
        wider = max(width, item_width)
        if index > start and (per_token * wider + per_item) * (index - start + 1) > budget:
            yield start, index
            start, wider = index, item_width
        width = wider
    if start < len(widths):
        yield start, len(widths)


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
