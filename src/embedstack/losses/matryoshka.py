"""MatryoshkaLoss: train the leading dimensions of the embedding to work on their own."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embedstack.losses.passes import embed_columns

logger = logging.getLogger(__name__)


def shrink(embeddings: Tensor, dim: int) -> Tensor:
    """The first ``dim`` dimensions, normalized to unit length."""
    if dim > embeddings.shape[-1]:
        raise ValueError(
            f"Dimension {dim} in matryoshka_dims is larger than the model's embedding dimension {embeddings.shape[-1]}."
        )
    return F.normalize(embeddings[..., :dim], p=2, dim=-1)


class MatryoshkaLoss(nn.Module):
    """The weighted sum of ``loss`` over the embeddings truncated to each of ``matryoshka_dims``.

    The columns are embedded once; each dimension's loss reads the truncated, renormalized embeddings. With a
    cached loss (GradCache) the truncation wraps its ``calculate_loss`` instead.

    Args:
        model: The model being trained.
        loss: The loss to apply at every dimension (one of embedstack's losses).
        matryoshka_dims: The dimensions to train, e.g. ``[768, 512, 256, 128, 64]``.
        matryoshka_weights: A weight per dimension (default: 1 each).
        n_dims_per_step: Train only this many randomly drawn dimensions per step (-1: all).
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | None = None,
        n_dims_per_step: int = -1,
    ) -> None:
        super().__init__()
        if not matryoshka_dims or any(dim <= 0 for dim in matryoshka_dims):
            raise ValueError(f"matryoshka_dims must be a non-empty list of positive dimensions, not {matryoshka_dims}.")
        weights = list(matryoshka_weights) if matryoshka_weights is not None else [1.0] * len(matryoshka_dims)
        if len(weights) != len(matryoshka_dims):
            raise ValueError(
                f"matryoshka_weights has {len(weights)} entries for {len(matryoshka_dims)} matryoshka_dims; give one "
                "weight per dimension."
            )
        full = getattr(model, "get_embedding_dimension", lambda: None)()
        if full is not None and max(matryoshka_dims) > full:
            raise ValueError(f"matryoshka_dims {list(matryoshka_dims)} exceed the model's embedding dimension {full}.")
        if full is not None and full not in matryoshka_dims:
            logger.warning(
                "The model's embedding dimension %d is not in matryoshka_dims %s, so the full one is not trained.",
                full,
                list(matryoshka_dims),
            )
        self.model = model
        self.loss = loss
        pairs = sorted(zip(matryoshka_dims, weights), key=lambda pair: pair[0], reverse=True)
        self.matryoshka_dims = tuple(dim for dim, _ in pairs)
        self.matryoshka_weights = tuple(weight for _, weight in pairs)
        self.n_dims_per_step = n_dims_per_step
        self.uses_gradient_cache = getattr(loss, "uses_gradient_cache", False)
        if self.uses_gradient_cache:
            loss.calculate_loss = _Truncated(loss.calculate_loss, self)  # type: ignore[assignment]

    def step_dims(self) -> list[int]:
        """The indices of the dimensions trained this step."""
        indices = list(range(len(self.matryoshka_dims)))
        if 0 < self.n_dims_per_step < len(indices):
            indices = sorted(random.sample(indices, self.n_dims_per_step))
        return indices

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """The loss of one batch."""
        if self.uses_gradient_cache:
            return self.loss(sentence_features, labels)
        if not hasattr(self.loss, "compute_loss_from_embeddings"):
            return self._through_forward(list(sentence_features), labels)
        embeddings = embed_columns(self.model, sentence_features)
        return _Truncated(self.loss.compute_loss_from_embeddings, self)(embeddings, labels)

    def _through_forward(self, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        """Any other loss: the model's forward is wrapped so the loss sees truncated embeddings, computed once."""
        original = self.model.forward
        cached = _CachedForward(original)
        self.model.forward = cached
        try:
            total: Any = 0.0
            for index in self.step_dims():
                cached.dim, cached.call = self.matryoshka_dims[index], 0
                total = total + self.matryoshka_weights[index] * self.loss(features, labels)
            return total
        finally:
            self.model.forward = original

    def get_config_dict(self) -> dict[str, Any]:
        """The settings a model card lists."""
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": list(self.matryoshka_dims),
            "matryoshka_weights": list(self.matryoshka_weights),
            "n_dims_per_step": self.n_dims_per_step,
        }


class _CachedForward:
    """The model's forward, run once per call position; later dimensions reuse the outputs, truncated."""

    def __init__(self, forward: Any) -> None:
        self.forward = forward
        self.outputs: list[dict[str, Tensor]] = []
        self.dim, self.call = 0, 0

    def __call__(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        if self.call == len(self.outputs):
            self.outputs.append(self.forward(features, **kwargs))
        output = dict(self.outputs[self.call])
        self.call += 1
        output["sentence_embedding"] = shrink(output["sentence_embedding"], self.dim)
        return output


class _Truncated:
    """A loss over embeddings, summed over the truncated dimensions with their weights."""

    def __init__(self, function: Any, owner: MatryoshkaLoss) -> None:
        self.function, self.owner = function, owner

    def __call__(
        self, embeddings: list[Tensor], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        total: Any = 0.0
        for index in self.owner.step_dims():
            dim, weight = self.owner.matryoshka_dims[index], self.owner.matryoshka_weights[index]
            truncated = [shrink(column, dim) for column in embeddings]
            if not with_backward:
                total = total + weight * self.function(truncated, labels)
                continue
            # A cached loss runs its backward by chunks: give it leaves, then carry their gradients back.
            leaves = [column.detach().requires_grad_() for column in truncated]
            total = total + weight * self.function(leaves, labels, with_backward=True)
            grads = [weight * leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
            torch.autograd.backward(truncated, grads)
        return total
