"""From a caller's pairs to scores: which inputs make one pair or a batch, and what happens to the logits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from embedstack.encode_io import is_dataset_column
from embedstack.engine.processes import run_on_processes


def as_pairs(inputs: Any) -> tuple[list[Any], bool]:
    """``(pairs, singular)``: the caller's pairs as a list, and whether one pair was given (as the reference).

    A list or tuple whose first item is not itself a list or tuple is one pair; a 1-D string array is one pair,
    a 2-D one a batch.

    Raises:
        ValueError: A pair does not hold two items.
    """
    singular = is_singular_pair(inputs)
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "UO":
        pairs = [inputs.tolist()] if singular else inputs.tolist()
    elif isinstance(inputs, (list, tuple)) or is_dataset_column(inputs):
        pairs = [list(inputs)] if singular else list(inputs)
    else:
        raise TypeError(
            f"predict takes a pair (query, document) or a list of pairs, got a {type(inputs).__name__}. Pass "
            "[(query, document), ...]; rank(query, documents) pairs one query with many documents."
        )
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(
                f"Input {index} is {pair!r}: a cross-encoder scores pairs, so each input must hold two items "
                "(query, document)."
            )
    return [tuple(pair) if isinstance(pair, list) else pair for pair in pairs], singular


def is_singular_pair(inputs: Any) -> bool:
    """Whether ``inputs`` is one pair rather than a list of pairs (the reference's ``is_singular_input``).

    A list or tuple (or dataset column) whose first item is not itself a list or tuple is one pair; a 1-D string
    array is one pair, a 2-D one (or an empty one) a batch; anything else counts as one input.
    """
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "UO":
        return bool(inputs.size > 0 and inputs.ndim < 2)
    if isinstance(inputs, (list, tuple)) or is_dataset_column(inputs):
        return len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    return True


def finish_scores(
    logits: torch.Tensor, activation: Callable[..., Any] | None, num_labels: int, apply_softmax: bool | None
) -> torch.Tensor:
    """The activation over (N, labels) logits, one label squeezed to (N,), then softmax over labels if asked."""
    if logits.numel() == 0:
        return logits
    if torch.is_floating_point(logits) and torch.finfo(logits.dtype).bits < 32:
        logits = logits.float()  # half-precision scores tie too often to rank
    scores = activation(logits) if activation is not None else logits
    if num_labels == 1 and scores.ndim > 1:
        scores = scores.squeeze(-1)
    if apply_softmax and scores.ndim > 1:
        scores = torch.nn.functional.softmax(scores, dim=1)
    return scores


def predict_on_processes(
    model: Any, pairs: list[Any], pool: Any, devices: Any, chunk_size: int | None, options: dict[str, Any]
) -> np.ndarray:
    """Scores of ``pairs`` from worker processes: ``pool``'s, or one per device, started and stopped here."""
    options = {**options, "convert_to_numpy": True, "show_progress_bar": False}
    return run_on_processes(model, pairs, pool, devices, chunk_size, options, method="predict")
