"""CoSENTLoss: rank the pairs of a batch by similarity in the order of their gold scores."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from embedstack.losses.base import check_labels, similarity_name
from embedstack.losses.passes import embed_columns
from embedstack.similarity import pairwise_cos_sim


class CoSENTLoss(nn.Module):
    """``log(1 + sum exp(s(k, l) - s(i, j)))`` over every two pairs where (i, j) has the higher gold score.

    Takes (sentence1, sentence2, score) rows; only the order of the scores matters.

    Args:
        model: The model being trained.
        scale: Multiplies the similarities (the inverse temperature).
        similarity_fct: Pairwise similarity of the two columns' embeddings.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_cos_sim,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """The loss of one batch."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss given the columns' embeddings: O(n log n) in the batch, by sorting the labels."""
        labels = check_labels(self, labels, embeddings[0].shape[0])
        scores = self.similarity_fct(embeddings[0], embeddings[1]).float() * self.scale  # (batch,)
        if labels.dtype == torch.bool:
            labels = labels.int()
        labels, order = labels.sort()
        scores = scores[order]
        # For pair i, the log-sum-exp of -s over the pairs with a strictly higher label.
        higher_start = torch.searchsorted(labels, labels, right=True)
        suffix = torch.logcumsumexp(-scores.flip(0), dim=0).flip(0)
        suffix = torch.cat((suffix, scores.new_full((1,), -torch.inf)))
        terms = torch.cat((scores.new_zeros(1), scores + suffix[higher_start]))
        return torch.logsumexp(terms, dim=0)

    def get_config_dict(self) -> dict[str, Any]:
        """The settings a model card lists."""
        return {"scale": self.scale, "similarity_fct": similarity_name(self.similarity_fct)}
