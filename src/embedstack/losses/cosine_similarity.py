"""CosineSimilarityLoss: regress the cosine similarity of each pair on its gold score."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from embedstack.losses.base import check_labels
from embedstack.losses.passes import embed_columns
from embedstack.util import fullname


class CosineSimilarityLoss(nn.Module):
    """``loss_fct(cos(u, v), score)`` over (sentence1, sentence2, score) rows; scores usually in [0, 1].

    Args:
        model: The model being trained.
        loss_fct: Compares the (transformed) cosine similarities with the labels (default: mean squared error).
        cos_score_transformation: Applied to the cosine similarities first (default: identity).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fct: nn.Module | None = None,
        cos_score_transformation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct if loss_fct is not None else nn.MSELoss()
        self.cos_score_transformation = cos_score_transformation or nn.Identity()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        """The loss of one batch."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss given the columns' embeddings."""
        labels = check_labels(self, labels, embeddings[0].shape[0])
        output = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        return self.loss_fct(output, labels.float())

    def get_config_dict(self) -> dict[str, Any]:
        """The settings a model card lists."""
        return {
            "loss_fct": fullname(self.loss_fct),
            "cos_score_transformation": fullname(self.cos_score_transformation),
        }
