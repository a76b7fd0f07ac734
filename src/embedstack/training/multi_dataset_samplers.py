"""Batch samplers over several datasets at once, batch for batch the same as sentence-transformers 6.2's.

The datasets are concatenated into one ``ConcatDataset``; each has its own batch sampler, whose indices are
shifted by the dataset's offset. Every batch comes from a single dataset; the sampler decides which dataset
gives the next batch. At the start of a pass the generator is reseeded with ``seed + epoch``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, cast

import torch
from torch.utils.data import BatchSampler, ConcatDataset, SubsetRandomSampler


class MultiDatasetDefaultBatchSampler(BatchSampler, ABC):
    """The base of the multi-dataset samplers: subclasses choose which dataset gives each batch.

    Args:
        dataset: The datasets, concatenated.
        batch_samplers: One batch sampler per dataset of ``dataset``, in the same order.
        generator: The random generator to draw with; the trainer shares it with ``batch_samplers``.
        seed: The seed of epoch 0; epoch ``n`` uses ``seed + n``.

    Raises:
        ValueError: The number of batch samplers differs from the number of datasets.
    """

    def __init__(
        self,
        dataset: ConcatDataset[Any],
        batch_samplers: list[BatchSampler],
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        if len(dataset.datasets) != len(batch_samplers):
            raise ValueError(
                f"{type(self).__name__} got {len(batch_samplers)} batch samplers for {len(dataset.datasets)} "
                "datasets, but each dataset of the ConcatDataset needs its own. Pass one batch sampler per dataset, "
                "in the order of the datasets."
            )
        first = batch_samplers[0]
        # As the reference, the ConcatDataset is the sampler (accelerate reads it); __iter__ never iterates it.
        super().__init__(cast(Iterable[int], dataset), batch_size=first.batch_size, drop_last=first.drop_last)
        self.dataset = dataset
        self.batch_samplers = batch_samplers
        self.generator = generator
        self.seed: int | None = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass the one of ``epoch``, for this sampler and each dataset's."""
        self.epoch = epoch
        for sampler in self.batch_samplers:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def _reseed(self) -> None:
        """Seed the generator with ``seed + epoch``, so each epoch draws differently and reproducibly."""
        if self.generator is not None and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)

    def _offsets(self) -> list[int]:
        """The index in the concatenation of each dataset's first sample."""
        return [0, *self.dataset.cumulative_sizes]

    @abstractmethod
    def __iter__(self) -> Iterator[list[int]]:
        """Yield batches of indices into the concatenation, each from one dataset."""

    @abstractmethod
    def __len__(self) -> int:
        """Return the number of batches, an estimate where the samplers' lengths are."""


class RoundRobinBatchSampler(MultiDatasetDefaultBatchSampler):
    """One batch from each dataset in turn, until one dataset runs out (the rest of that round is not given).

    Every dataset gives as many batches; the larger ones are not used up.
    """

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        offsets = self._offsets()
        for batches in zip(*(iter(sampler) for sampler in self.batch_samplers)):
            for offset, batch in zip(offsets, batches):
                yield [index + offset for index in batch]

    def __len__(self) -> int:
        return min(len(sampler) for sampler in self.batch_samplers) * len(self.batch_samplers)


class ProportionalBatchSampler(MultiDatasetDefaultBatchSampler):
    """Every batch of every dataset, the datasets taking turns in a random order weighted by their batch counts.

    Larger datasets give batches more often, and all datasets run out together. When a dataset's sampler gives
    fewer batches than its ``__len__`` promised, its remaining turns are skipped.
    """

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        offsets = self._offsets()
        turns = [dataset for dataset, sampler in enumerate(self.batch_samplers) for _ in range(len(sampler))]
        iterators = [iter(sampler) for sampler in self.batch_samplers]
        # SubsetRandomSampler draws its permutation on the first next(), before the samplers below reseed the
        # generator they share with it: the same order of draws as the reference.
        for dataset in SubsetRandomSampler(turns, generator=self.generator):
            batch = next(iterators[dataset], None)
            if batch is not None:
                yield [index + offsets[dataset] for index in batch]

    def __len__(self) -> int:
        return sum(len(sampler) for sampler in self.batch_samplers)
