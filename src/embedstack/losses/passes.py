"""Token-budget passes for training: embed a batch's columns in length-sorted passes, padding trimmed per pass.

A training batch holds a few columns (anchor, positive, negatives) of padded features. The reference embeds each
column in one forward, padded to that column's longest text: with short sentences about half of the tokens a
Transformer computes (forward and backward) are padding. Here the texts of all columns that preprocess alike are
sorted by length and cut into passes, each padded only to its own longest text; the cuts minimise the padded
tokens plus a fixed cost per pass (:func:`plan_passes`). The embeddings are put back in the order of the batch,
so a loss sees the same embeddings and gradients as with one pass per column (up to float rounding): no module
of these models computes statistics across a batch. Dropout draws different masks, from the same distribution.

``with passes_disabled():`` (the trainer's ``token_budget_passes=False``) embeds each column in one pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

PASS_COST_TOKENS = 64  # what one more forward costs, in padded tokens (MiniLM on 2 CPU cores: 32-128 all near best)
MAX_PASS_TOKENS = 16384  # the most padded tokens in one pass

TOKEN_KEYS = frozenset({"input_ids", "attention_mask", "token_type_ids", "position_ids"})  # zero-padded, trimmed
_ENABLED: ContextVar[bool] = ContextVar("token_budget_passes", default=True)


@contextmanager
def passes_disabled(disabled: bool = True) -> Iterator[None]:
    """Embed each column in a single pass (the reference's way) inside the block; ``disabled=False`` is a no-op."""
    token = _ENABLED.set(not disabled)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def plan_passes(
    lengths: Sequence[int],
    *,
    pass_cost: int = PASS_COST_TOKENS,
    max_tokens: int = MAX_PASS_TOKENS,
    max_rows: int | None = None,
) -> list[range]:
    """Cut lengths sorted ascending into consecutive passes minimising padded tokens plus ``pass_cost`` per pass.

    A pass of rows ``i..j-1`` costs ``(j - i) * lengths[j - 1]`` (all padded to its longest) and at most
    ``max_tokens`` of them (unless one row alone is longer) and at most ``max_rows`` rows. Exact dynamic
    programming; each end looks back only as far as a pass can reach (``max_rows``, ``max_tokens / width``).

    >>> plan_passes([3, 3, 4, 20, 21])
    [range(0, 5)]
    >>> plan_passes([3, 3, 4, 200, 210])
    [range(0, 3), range(3, 5)]
    """
    sorted_lengths = np.asarray(lengths, dtype=np.int64)
    n = len(sorted_lengths)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cut = np.zeros(n + 1, dtype=np.int64)
    for end in range(1, n + 1):
        width = int(sorted_lengths[end - 1])
        reach = max(1, min(max_rows or n, max_tokens // max(width, 1)))  # the most rows a pass ending here holds
        first = max(0, end - reach)
        rows = end - np.arange(first, end)
        cost = best[first:end] + rows * width + pass_cost
        cut[end] = first + int(np.argmin(cost))
        best[end] = cost[cut[end] - first]
    passes: list[range] = []
    end = n
    while end > 0:
        passes.append(range(int(cut[end]), end))
        end = int(cut[end])
    return passes[::-1]


def embed_columns(model: nn.Module, features_list: Iterable[dict[str, Any]]) -> list[Tensor]:
    """One ``sentence_embedding`` tensor per column, in the columns' row order (token-budget passes when on)."""
    plan = pass_batches(list(features_list))
    return plan.scatter([model(batch.features)["sentence_embedding"] for batch in plan])


@dataclass
class Pass:
    """One forward: its features, and where its output rows go (a whole column, or rows of several columns)."""

    features: dict[str, Any]
    column: int | None = None  # the output is this whole column
    columns: Tensor | None = None  # (rows,) else: each output row's column ...
    rows: Tensor | None = None  # (rows,) ... and its row in that column


@dataclass
class PassPlan:
    """The passes that embed a batch's columns, and how to put their outputs back in the columns' order."""

    passes: list[Pass]
    column_rows: list[int | None]  # rows per column, where known before the forward

    def __iter__(self) -> Iterator[Pass]:
        return iter(self.passes)

    def __len__(self) -> int:
        return len(self.passes)

    def scatter(self, outputs: list[Tensor]) -> list[Tensor]:
        """The outputs of the passes (one (rows, dim) tensor each) as one tensor per column, rows in order."""
        if [batch.column for batch in self.passes] == list(range(len(self.column_rows))):
            return list(outputs)  # one pass per column, in order
        sizes = list(self.column_rows)
        for batch, output in zip(self.passes, outputs):
            if batch.column is not None:
                sizes[batch.column] = output.shape[0]
        known = [size if size is not None else 0 for size in sizes]
        offsets = np.cumsum([0, *known])
        positions = torch.cat([_positions(batch, offsets) for batch in self.passes])
        stacked = torch.cat(outputs)  # (all rows, dim), in pass order
        inverse = torch.empty_like(positions)
        inverse[positions] = torch.arange(len(positions))
        return list(stacked.index_select(0, inverse.to(stacked.device)).split(known))


def _positions(batch: Pass, offsets: np.ndarray) -> Tensor:
    """Where a pass's output rows go among all columns' rows, end to end."""
    if batch.column is not None:
        return torch.arange(int(offsets[batch.column]), int(offsets[batch.column + 1]))
    if batch.columns is None or batch.rows is None:
        raise RuntimeError("A pass names neither a whole column nor its rows' columns; this is a bug in embedstack.")
    return torch.as_tensor(offsets)[batch.columns] + batch.rows


def pass_batches(columns: list[dict[str, Any]], max_rows: int | None = None) -> PassPlan:
    """The passes for ``columns``: length-sorted token-budget passes when on, else one per column.

    ``max_rows`` caps the texts in one pass (GradCache's mini-batch size).
    """
    column_rows: list[int | None] = [_row_count(features) for features in columns]
    passes: list[Pass] = []
    groups = _mergeable_groups(columns) if _ENABLED.get() else [[index] for index in range(len(columns))]
    for group in groups:
        rows = _stack_rows([columns[index] for index in group]) if _ENABLED.get() else None
        if rows is None:
            for index in group:
                passes += _row_chunks(columns[index], index, column_rows[index], max_rows)
            continue
        owner = torch.cat([torch.full((column_rows[i] or 0,), i) for i in group])
        local = torch.cat([torch.arange(column_rows[i] or 0) for i in group])
        order = np.argsort(rows.lengths, kind="stable")
        for span in plan_passes(rows.lengths[order].tolist(), max_rows=max_rows):
            picked = torch.as_tensor(order[span.start : span.stop])
            passes.append(Pass(_pass_features(rows, picked), columns=owner[picked], rows=local[picked]))
    return PassPlan(passes, column_rows)


def _row_chunks(features: dict[str, Any], column: int, count: int | None, max_rows: int | None) -> list[Pass]:
    """A column in order: whole, or in chunks of at most ``max_rows`` rows."""
    if max_rows is None or (count is not None and count <= max_rows):
        return [Pass(dict(features), column=column)]
    if count is None:
        raise ValueError(
            "This column's features have no (rows, tokens) attention mask (a StaticEmbedding's flat token stream), so "
            "they cannot be cut into mini-batches. Use MultipleNegativesRankingLoss instead of the cached loss."
        )
    for key, value in features.items():
        if isinstance(value, Tensor) and key != "prompt_length" and (value.ndim == 0 or value.shape[0] != count):
            raise ValueError(
                f"The features hold {key!r} of shape {tuple(value.shape)}, whose first axis is not one row per text "
                f"({count} texts), so they cannot be cut into mini-batches of {max_rows}. Use the loss without "
                "caching, or a mini_batch_size at least the batch size."
            )
    chunks = []
    for begin in range(0, count, max_rows):
        end = min(begin + max_rows, count)
        chunk = {
            key: value[begin:end] if isinstance(value, Tensor) and value.ndim and value.shape[0] == count else value
            for key, value in features.items()
        }
        chunks.append(Pass(chunk, columns=torch.full((end - begin,), column), rows=torch.arange(begin, end)))
    return chunks


@dataclass
class _Rows:
    """The rows of a group of columns, padded to one width, with each row's real token count."""

    tokens: dict[str, Tensor]  # (rows, width) per token key: trimmed per pass
    per_row: dict[str, Tensor]  # (rows, ...) per other per-row key (flags, pixel values): gathered, not trimmed
    shared: dict[str, Any]  # values every row shares (prompt_length, modality, task, ...)
    lengths: np.ndarray  # (rows,)


def _pass_features(rows: _Rows, picked: Tensor) -> dict[str, Any]:
    """The features of the rows ``picked``, trimmed to the longest of them."""
    width = int(rows.lengths[picked.numpy()].max())
    features: dict[str, Any] = dict(rows.shared)
    for key, tensor in rows.per_row.items():
        features[key] = tensor.index_select(0, picked.to(tensor.device))
    for key, tensor in rows.tokens.items():
        selected = tensor.index_select(0, picked.to(tensor.device))
        features[key] = selected[:, :width]
    return features


def _layout(features: dict[str, Any]) -> tuple[set[str], set[str]] | None:
    """The token keys ((rows, width) like the attention mask) and the other per-row tensor keys of a column.

    None when the column cannot be cut by rows here: no (rows, width) attention mask, a tensor whose first axis is
    not one row per text (a vision-language model's flattened patches, image grids), or an unknown per-token tensor
    that zero padding could not extend.
    """
    mask = features.get("attention_mask")
    if not isinstance(mask, Tensor) or mask.ndim != 2:
        return None
    rows, width = mask.shape
    tokens, per_row = set(), set()
    for key, value in features.items():
        if not isinstance(value, Tensor) or key == "prompt_length":
            continue
        if value.ndim == 0 or value.shape[0] != rows:
            return None
        if value.ndim >= 2 and value.shape[1] == width:
            if key not in TOKEN_KEYS:
                return None
            tokens.add(key)
        else:
            per_row.add(key)
    return tokens, per_row


def _stack_rows(columns: list[dict[str, Any]]) -> _Rows | None:
    """All rows of ``columns`` as one padded batch, or None when a column has no (rows, tokens) attention mask."""
    layout = _layout(columns[0])
    if layout is None:
        return None
    token_keys, row_keys = layout
    masks: list[Tensor] = [features["attention_mask"] for features in columns]
    if any(mask.shape[1] and bool((mask[:, 0] == 0).any()) for mask in masks):
        # Left padding: positions count from the first (padding) column in models with absolute positions, so
        # a row's embedding depends on its column's padding; trimming it would change the embeddings.
        return None
    width = max(mask.shape[1] for mask in masks)
    tokens = {key: torch.cat([_pad(column[key], width) for column in columns]) for key in token_keys}
    per_row = {key: torch.cat([features[key] for features in columns]) for key in row_keys}
    shared = {key: value for key, value in columns[0].items() if key not in token_keys | row_keys}
    lengths = tokens["attention_mask"].sum(dim=1).cpu().numpy()
    return _Rows(tokens, per_row, shared, np.maximum(lengths, 1))


def _pad(tensor: Tensor, width: int) -> Tensor:
    missing = width - tensor.shape[1]
    return F.pad(tensor, (0, missing)) if missing else tensor


def _mergeable_groups(columns: list[dict[str, Any]]) -> list[list[int]]:
    """Column indices grouped by how they preprocess: same feature layout and the same shared values."""
    groups: list[list[int]] = []
    for index, features in enumerate(columns):
        for group in groups:
            if _alike(columns[group[0]], features):
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


def _alike(first: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two columns' rows can share passes: same keys and layout, equal shared values."""
    layout, other_layout = _layout(first), _layout(other)
    if set(first) != set(other) or layout is None or layout != other_layout:
        return False
    token_keys, row_keys = layout
    for key in row_keys:
        if first[key].shape[1:] != other[key].shape[1:] or first[key].dtype != other[key].dtype:
            return False
    for key in set(first) - token_keys - row_keys:
        value, candidate = first[key], other[key]
        try:
            if isinstance(value, Tensor) or isinstance(candidate, Tensor):
                if not (isinstance(value, Tensor) and isinstance(candidate, Tensor) and torch.equal(value, candidate)):
                    return False
            elif bool(value != candidate):
                return False
        except (RuntimeError, ValueError):  # values that cannot be compared cannot be shown equal
            return False
    return True


def _row_count(features: dict[str, Any]) -> int | None:
    """The rows (texts) of a column, from its (rows, tokens) attention mask or input ids; None without one."""
    for key in ("attention_mask", "input_ids"):
        value = features.get(key)
        if isinstance(value, Tensor) and value.ndim == 2:
            return int(value.shape[0])
    return None
