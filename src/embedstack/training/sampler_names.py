"""The names of the batch samplers the trainer accepts (``batch_sampler=``, ``multi_dataset_batch_sampler=``)."""

from __future__ import annotations

from enum import Enum

from embedstack.errors import close_matches


class _ChoiceEnum(str, Enum):
    """A string enum whose unknown values raise a ``ValueError`` listing the valid ones."""

    @classmethod
    def _missing_(cls, value: object) -> None:
        valid = [member.value for member in cls]
        raise ValueError(
            f"{value!r} is not a valid {cls.__name__}: no sampler has that name. "
            f"Pass one of {valid}.{close_matches(str(value), valid)}"
        )


class BatchSamplers(_ChoiceEnum):
    """How samples are grouped into batches: the names the trainer accepts for ``batch_sampler``.

    ``batch_sampler`` (default) is ``DefaultBatchSampler``; ``no_duplicates`` is ``NoDuplicatesBatchSampler``, for
    losses with in-batch negatives; ``no_duplicates_hashed`` is the same with ``precompute_hashes=True``;
    ``group_by_label`` is ``GroupByLabelBatchSampler``, for in-batch triplet losses.
    """

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(_ChoiceEnum):
    """In what order batches are drawn from several datasets: the names the trainer accepts.

    ``round_robin`` is ``RoundRobinBatchSampler``: one batch from each dataset in turn until one runs out, so
    every dataset gives as many batches but larger ones are not used up. ``proportional`` (default) is
    ``ProportionalBatchSampler``: every batch of every dataset, in a random order of datasets, so larger datasets
    give batches more often.
    """

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"
