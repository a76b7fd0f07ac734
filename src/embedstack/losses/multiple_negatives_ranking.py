"""MultipleNegativesRankingLoss (InfoNCE with in-batch negatives) and its symmetric variant."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from embedstack.losses.base import similarity_name
from embedstack.losses.passes import embed_columns
from embedstack.losses.ranking_scores import Direction, HardnessMode, PartitionMode, RankingSettings, ranking_loss
from embedstack.similarity import cos_sim


class MultipleNegativesRankingLoss(nn.Module):
    """For each anchor, its positive must score above every other document of the batch (and any hard negatives).

    Takes (anchor, positive) pairs, or (anchor, positive, negative_1, ..., negative_n) rows; no labels. Use the
    ``no_duplicates`` batch sampler so that no in-batch negative repeats an anchor's positive.

    Args:
        model: The model being trained.
        scale: Multiplies the similarities (the inverse temperature).
        similarity_fct: Similarity matrix of two sets of embeddings.
        gather_across_devices: Not supported here (in-batch negatives across processes); must stay False.
        directions: Which comparisons enter the softmax: ``query_to_doc`` (always), ``doc_to_query`` (the
            symmetric term), ``query_to_query``, ``doc_to_doc``.
        partition_mode: One softmax over all directions (``joint``) or one per direction, averaged.
        hardness_mode / hardness_strength: Add ``strength * sim`` (without gradient) to the logits of the negatives
            named by the mode.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: PartitionMode = "joint",
        hardness_mode: HardnessMode | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        if gather_across_devices:
            raise ValueError(
                "gather_across_devices=True is not supported by embedstack's losses yet: each process ranks "
                "against its own batch. Leave it False."
            )
        self.model = model
        self.similarity_fct = similarity_fct
        self.settings = RankingSettings(scale, tuple(directions), partition_mode, hardness_mode, hardness_strength)

    @property
    def scale(self) -> float:
        """The inverse temperature (settable, as in sentence-transformers)."""
        return self.settings.scale

    @scale.setter
    def scale(self, value: float) -> None:
        self.settings = replace(self.settings, scale=value)

    @property
    def directions(self) -> tuple[Direction, ...]:
        """The comparisons in the softmax."""
        return self.settings.directions

    @directions.setter
    def directions(self, value: tuple[Direction, ...]) -> None:
        self.settings = replace(self.settings, directions=tuple(value))

    @property
    def partition_mode(self) -> PartitionMode:
        """One softmax over all directions, or one per direction."""
        return self.settings.partition_mode

    @partition_mode.setter
    def partition_mode(self, value: PartitionMode) -> None:
        self.settings = replace(self.settings, partition_mode=value)

    @property
    def hardness_mode(self) -> HardnessMode | None:
        """Which negatives get the hardness penalty."""
        return self.settings.hardness_mode

    @hardness_mode.setter
    def hardness_mode(self, value: HardnessMode | None) -> None:
        self.settings = replace(self.settings, hardness_mode=value)

    @property
    def hardness_strength(self) -> float:
        """The hardness penalty's strength."""
        return self.settings.hardness_strength

    @hardness_strength.setter
    def hardness_strength(self, value: float) -> None:
        self.settings = replace(self.settings, hardness_strength=value)

    @property
    def gather_across_devices(self) -> bool:
        """Always False: in-batch negatives come from each process's own batch."""
        return False

    @property
    def temperature(self) -> float:
        """``1 / scale``."""
        return 1.0 / self.settings.scale

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """The loss of one batch."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss given the columns' embeddings (anchors first, then positives, then negatives)."""
        if len(embeddings) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 text columns (anchor, positive), got {len(embeddings)}."
            )
        rows = torch.arange(embeddings[0].shape[0], device=embeddings[0].device)
        return ranking_loss(embeddings[0], embeddings[1:], rows, self.settings, self.similarity_fct)

    def get_config_dict(self) -> dict[str, Any]:
        """The settings a model card lists."""
        return {
            "scale": self.settings.scale,
            "similarity_fct": similarity_name(self.similarity_fct),
            "gather_across_devices": False,
            "directions": self.settings.directions,
            "partition_mode": self.settings.partition_mode,
            "hardness_mode": self.settings.hardness_mode,
            "hardness_strength": self.settings.hardness_strength,
        }


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """MultipleNegativesRankingLoss in both directions (anchor to documents, positive to anchors), averaged."""

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
        )
