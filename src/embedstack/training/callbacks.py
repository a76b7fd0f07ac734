"""Trainer callbacks of our own (the model card's is in ``model_card.py``)."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class ZeroLossGradients(TrainerCallback):
    """Clear gradients the loss owns (a loss with parameters), which ``model.zero_grad()`` does not reach."""

    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        """Start with no stale gradients."""
        if optimizer is not None:
            optimizer.zero_grad()

    def on_step_end(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        """Clear them after each optimizer step."""
        if optimizer is not None:
            optimizer.zero_grad()
