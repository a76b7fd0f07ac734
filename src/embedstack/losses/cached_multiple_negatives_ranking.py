"""CachedMultipleNegativesRankingLoss: MultipleNegativesRankingLoss with GradCache, for large batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from embedstack.losses.gradcache import cached_loss
from embedstack.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from embedstack.losses.ranking_scores import Direction, HardnessMode, PartitionMode, ranking_loss
from embedstack.similarity import cos_sim


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """The same loss as :class:`MultipleNegativesRankingLoss`, with memory bounded by ``mini_batch_size``.

    The batch (its in-batch negatives) can be far larger than what fits in memory at once: the embeddings are
    computed without a graph, the loss's gradient with respect to them is cached, and each mini-batch is embedded
    again with a graph during ``backward`` (about 1.3x the compute of the plain loss).

    Args:
        model: The model being trained.
        scale / similarity_fct / directions / partition_mode / hardness_mode / hardness_strength: As in
            :class:`MultipleNegativesRankingLoss`.
        mini_batch_size: The most texts embedded at once.
        mini_batch_num_tokens: Not supported (mini-batches here are length-sorted by rows); must be None.
        gather_across_devices: Must stay False.
        show_progress_bar: Accepted for compatibility; no bar is shown.
    """

    uses_gradient_cache = True

    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: PartitionMode = "joint",
        show_progress_bar: bool = False,
        hardness_mode: HardnessMode | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=directions,
            partition_mode=partition_mode,
            hardness_mode=hardness_mode,
            hardness_strength=hardness_strength,
        )
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a positive number of texts, got {mini_batch_size}.")
        if mini_batch_num_tokens is not None:
            raise ValueError(
                "mini_batch_num_tokens is not supported: embedstack's mini-batches are length-sorted passes of at "
                "most mini_batch_size texts. Leave it None."
            )
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """The loss of one batch; its ``backward`` runs the second, mini-batched embedding step."""
        columns = list(sentence_features)
        if len(columns) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 text columns (anchor, positive), got {len(columns)}."
            )
        return cached_loss(self.model, columns, labels, self.mini_batch_size, self.calculate_loss)

    def calculate_loss(
        self, embeddings: list[Tensor], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss given every column's embeddings, ``mini_batch_size`` anchors at a time (what MatryoshkaLoss wraps).

        With ``with_backward`` each chunk's backward runs here, so only one chunk's scores are alive at once; the
        returned loss is then detached.
        """
        if len(embeddings) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 text columns (anchor, positive), got {len(embeddings)}."
            )
        queries, docs = embeddings[0], embeddings[1:]
        total = queries.new_zeros(())
        for begin in range(0, queries.shape[0], self.mini_batch_size):
            rows = torch.arange(begin, min(begin + self.mini_batch_size, queries.shape[0]), device=queries.device)
            part = ranking_loss(queries, docs, rows, self.settings, self.similarity_fct)
            if with_backward:
                part.backward()
                part = part.detach()
            total = total + part
        return total

    def get_config_dict(self) -> dict[str, Any]:
        """The settings a model card lists."""
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size, "mini_batch_num_tokens": None}
