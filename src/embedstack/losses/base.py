"""What every loss shares: the model it trains, and a check that the labels fit the batch."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


def similarity_name(function: Any) -> str:
    """The name a model card shows for a similarity function (``cos_sim``, ...)."""
    return getattr(function, "__name__", type(function).__name__)


def check_labels(loss: nn.Module, labels: Tensor | None, batch_size: int) -> Tensor:
    """``labels`` as a flat tensor with one value per example; a ValueError naming the loss otherwise."""
    if labels is None:
        raise ValueError(
            f"{type(loss).__name__} needs a label column (one of 'label', 'labels', 'score', 'scores') with a score "
            "per example, but the batch has none. Add the scores to the dataset, or pick a loss that takes no labels."
        )
    if labels.numel() != batch_size:
        raise ValueError(
            f"{type(loss).__name__} expects {batch_size} labels (one per example), but got {labels.numel()} labels "
            f"with shape {tuple(labels.shape)}."
        )
    return labels.view(-1)
