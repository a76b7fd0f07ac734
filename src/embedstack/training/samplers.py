"""Batch samplers over one training dataset, batch for batch the same as sentence-transformers 6.2's.

A sampler that shuffles reseeds its generator with ``seed + epoch`` when a pass starts (on the first ``next()``,
as the reference does, which matters when several samplers share one generator), so an epoch's batches depend on
the seed and the epoch alone. ``DefaultBatchSampler`` does not shuffle: it batches the order of the sampler it
wraps (a ``RandomSampler`` in training).

``BatchSamplers`` and ``MultiDatasetBatchSamplers`` (in ``sampler_names.py``) name the samplers the trainer accepts.
They and the multi-dataset samplers (``multi_dataset_samplers.py``) are re-exported here, so every sampler name the
trainer uses (the reference's ``sentence_transformers.base.sampler.__all__``) imports from this one module.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import BatchSampler, Sampler

from embedstack.training.multi_dataset_samplers import (
    MultiDatasetDefaultBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)
from embedstack.training.sampler_names import BatchSamplers, MultiDatasetBatchSamplers

__all__ = [
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
]

logger = logging.getLogger(__name__)

# Columns the trainer adds to route samples; their values never make two samples duplicates.
EXCLUDED_COLUMNS = frozenset({"dataset_name"})
# Extra shuffled passes NoDuplicatesBatchSampler may run to reach the number of batches __len__ promised.
MAX_RESAMPLE_PASSES = 2

_PLAIN_TYPES = (str, int, float, bool, bytes, type(None), np.integer, np.floating, np.bool_)
_SampleValues = set[str] | set[int]


class SetEpochMixin:
    """An ``epoch`` the trainer sets before each pass, and the reseeding that makes it count."""

    generator: torch.Generator | None
    seed: int | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass the one of ``epoch``."""
        self.epoch = epoch

    def _reseed(self) -> None:
        """Seed the generator with ``seed + epoch``, so each epoch shuffles differently and reproducibly."""
        if self.generator is not None and self.seed is not None:
            self.generator.manual_seed(self.seed + self.epoch)


class DefaultBatchSampler(SetEpochMixin, BatchSampler):
    """PyTorch's ``BatchSampler`` with ``set_epoch``, the base of every single-dataset sampler here.

    Args:
        dataset: What to batch: in training a ``RandomSampler`` over the dataset, whose order is kept.
        batch_size: Samples per batch.
        drop_last: Drop the last batch when it is smaller than ``batch_size``.
        valid_label_columns: Column names that may hold the label; the first one in the dataset is used.
        generator: The random generator that samplers which shuffle reseed and draw from.
        seed: The seed of epoch 0; epoch ``n`` uses ``seed + n``.
    """

    def __init__(
        self,
        dataset: Dataset | Sampler[int] | Iterable[int],
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last)
        self.valid_label_columns = valid_label_columns
        self.generator = generator
        self.seed = seed


class GroupByLabelBatchSampler(DefaultBatchSampler):
    """Batches of pairs from several labels, for in-batch triplet mining (``BatchHardTripletLoss`` and kin).

    Samples are shuffled within each label; then, round after round, the labels take turns (in a fresh random
    order each round) giving 2 samples each, until fewer than 2 labels have samples left. The stream is cut into
    batches of ``batch_size``, so every batch holds at least 2 labels with at least 2 samples each. Labels with
    fewer than 2 samples are left out.

    Args:
        dataset: The dataset to sample from.
        batch_size: Samples per batch: an even number of at least 4.
        drop_last: Drop the last batch when it is smaller than ``batch_size`` (one under 4 is always dropped).
        valid_label_columns: Column names that may hold the label; the first one in the dataset is used.
        generator: The random generator to shuffle with.
        seed: The seed of epoch 0; epoch ``n`` uses ``seed + n``.

    Raises:
        ValueError: ``batch_size`` is odd or under 4, no label column is found, or fewer than 2 labels have 2
            samples.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator=generator, seed=seed)
        self.dataset = dataset
        if self.batch_size < 4 or self.batch_size % 2 == 1:
            raise ValueError(
                f"GroupByLabelBatchSampler got batch_size={self.batch_size}, but each batch holds pairs from at "
                "least 2 labels, so it must be an even number >= 4. Pass an even batch_size of 4 or more."
            )
        groups: dict[Any, list[int]] = defaultdict(list)
        for index, label in enumerate(self._labels(dataset, self.valid_label_columns)):
            groups[label].append(index)
        self.groups = {label: indices for label, indices in groups.items() if len(indices) >= 2}
        if len(self.groups) < 2:
            raise ValueError(
                f"GroupByLabelBatchSampler found {len(self.groups)} label(s) with 2 or more samples, but it needs "
                "at least 2 to build batches for triplet mining. Add samples of more labels, or use another "
                "batch sampler."
            )
        # The stream stops when one label is left, i.e. after as many rounds as the second-largest label has pairs.
        pairs = sorted((len(indices) // 2 for indices in self.groups.values()), reverse=True)
        self._stream_length = 2 * sum(min(count, pairs[1]) for count in pairs)

    @staticmethod
    def _labels(dataset: Dataset, valid_label_columns: list[str] | None) -> Iterable[Any]:
        """The values of the first of ``valid_label_columns`` that the dataset has."""
        for column in valid_label_columns or []:
            if column in dataset.column_names:
                return dataset[column]
        raise ValueError(
            f"GroupByLabelBatchSampler found none of the label columns {valid_label_columns} in the dataset, "
            f"whose columns are {dataset.column_names}; it cannot group samples without labels. Add a label "
            "column, or pass its name in valid_label_columns."
        )

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        batch: list[int] = []
        for index in self._pair_stream():
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        # Labels give pairs in turn, so 4 or more samples hold at least 2 labels with 2 samples each.
        if not self.drop_last and len(batch) >= 4:
            yield batch

    def _pair_stream(self) -> Iterator[int]:
        """Sample indices, 2 per label per round, in the reference's order of random draws."""
        queues: dict[Any, deque[int]] = {}
        for label, indices in self.groups.items():
            order = torch.randperm(len(indices), generator=self.generator)[: len(indices) // 2 * 2]
            queues[label] = deque(indices[i] for i in order)
        labels = list(queues)
        emitted = 0
        last_label = None
        while len(labels) >= 2:
            labels = [labels[i] for i in torch.randperm(len(labels), generator=self.generator)]
            # Within one batch, two consecutive pairs never share a label.
            if emitted % self.batch_size and labels[0] == last_label:
                labels[0], labels[1] = labels[1], labels[0]
            for label in labels:
                yield queues[label].popleft()
                yield queues[label].popleft()
                emitted += 2
            last_label = labels[-1]
            labels = [label for label in labels if queues[label]]

    def __len__(self) -> int:
        count = self._stream_length // self.batch_size
        if not self.drop_last and self._stream_length % self.batch_size >= 4:
            count += 1
        return count


def _value_key(value: Any) -> str:
    """The string two cell values share exactly when they count as duplicates.

    Plain values keep their ``str()``. Other objects (images, audio, decoders) often put a memory address in
    ``str()``, fresh on every access, so their pickled content is digested instead; one that cannot be pickled
    falls back to ``str()`` and matches nothing.
    """
    if isinstance(value, _PLAIN_TYPES):
        return str(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, _PLAIN_TYPES) for item in value):
            return str(value)
        return "[" + ", ".join(_value_key(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_value_key(item)}" for key, item in value.items()) + "}"
    # Audio and video decoders pickle a storage key taken from their address; the encoded source is stable.
    encoded = getattr(value, "_hf_encoded", None)
    if encoded is not None:
        value = encoded
    try:
        return hashlib.sha256(pickle.dumps(value)).hexdigest()
    except Exception:
        return str(value)


def _int64_hash(key: str) -> int:
    """A 64-bit hash of ``key`` as a signed int, so it fits an Arrow int64 column."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _hash_batch(batch: dict[str, list[Any]], columns: list[str]) -> dict[str, list[list[int]]]:
    """One hash per column for each row of a ``datasets.map`` batch (module level: ``num_proc`` pickles it)."""
    num_rows = len(next(iter(batch.values()), []))
    return {
        "__hashes": [[_int64_hash(_value_key(batch[column][row])) for column in columns] for row in range(num_rows)]
    }


@functools.cache
def _warn_once(message: str) -> None:
    logger.warning(message)


class NoDuplicatesBatchSampler(DefaultBatchSampler):
    """Batches in which no value occurs twice, across all columns, for losses with in-batch negatives.

    With ``MultipleNegativesRankingLoss`` and kin, every other sample of a batch is a negative; a duplicate text
    would be a false negative. Samples are taken in shuffled order; one that shares a value with the batch so far
    waits for a later batch. Label columns (``valid_label_columns``) and ``dataset_name`` are not compared. When a
    pass over the dataset gives fewer batches than ``__len__`` (``drop_last`` with many duplicates), the dataset is
    reshuffled for up to ``MAX_RESAMPLE_PASSES`` more passes, which repeat samples, and a warning is logged.

    Args:
        dataset: The dataset to sample from.
        batch_size: Samples per batch.
        drop_last: Drop batches smaller than ``batch_size``.
        valid_label_columns: Label columns, left out of the duplicate check.
        generator: The random generator to shuffle with.
        seed: The seed of epoch 0; epoch ``n`` uses ``seed + n``.
        precompute_hashes: Hash every value once, with ``datasets.map``, instead of reading each row again at each
            check: faster, above all for images and audio, for ``len(dataset) * columns * 8`` bytes of memory.
        precompute_num_proc: Processes for the hashing; None takes ``min(8, cpu_count - 1)``, at least 1.
        precompute_batch_size: Rows per ``datasets.map`` batch when hashing.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        precompute_hashes: bool = False,
        precompute_num_proc: int | None = None,
        precompute_batch_size: int = 1000,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator=generator, seed=seed)
        if label_columns := set(dataset.column_names) & set(valid_label_columns or []):
            dataset = dataset.remove_columns(sorted(label_columns))
        self.dataset = dataset
        self.precompute_hashes = precompute_hashes
        if precompute_hashes and precompute_num_proc is None:
            # Leave a core free so hashing does not saturate the machine.
            precompute_num_proc = max(1, min(8, (os.cpu_count() or 1) - 1))
        self.precompute_num_proc = precompute_num_proc
        self.precompute_batch_size = precompute_batch_size
        self._row_hashes: np.ndarray | None = None

    def __iter__(self) -> Iterator[list[int]]:
        self._reseed()
        if len(self.dataset) == 0:
            return
        values_of = self._values_getter()
        expected = len(self)
        yielded = 0
        # The first pass is never cut short: with drop_last=False it may rightly give more batches than __len__.
        for batch in self._one_pass(values_of):
            yield batch
            yielded += 1
        if yielded >= expected:
            return
        if yielded > 0:
            shortfall = expected - yielded
            _warn_once(
                f"NoDuplicatesBatchSampler produced only {yielded} of the expected {expected} batches in a full "
                f"pass over the dataset. The remaining {shortfall} batches are resampled, so at most "
                f"{shortfall / expected:.1%} of this epoch's samples are repeats from earlier batches."
            )
            for batch in self._resampled(values_of, shortfall):
                yield batch
                yielded += 1
            if yielded >= expected:
                return
        _warn_once(
            f"NoDuplicatesBatchSampler yielded only {yielded} of the expected {expected} batches: the dataset has "
            "too few distinct values for this batch size. Lower the batch size."
        )

    def _resampled(self, values_of: Callable[[int], _SampleValues], count: int) -> Iterator[list[int]]:
        """Up to ``count`` batches from up to ``MAX_RESAMPLE_PASSES`` fresh shuffles."""
        for _ in range(MAX_RESAMPLE_PASSES):
            for batch in self._one_pass(values_of):
                yield batch
                count -= 1
                if count == 0:
                    return

    def _one_pass(self, values_of: Callable[[int], _SampleValues]) -> Iterator[list[int]]:
        """The batches of one shuffle of the dataset; a sample that conflicts waits for a later batch."""
        num_rows = len(self.dataset)
        index_dtype = torch.int32 if num_rows <= np.iinfo(np.int32).max else torch.int64
        order = torch.randperm(num_rows, generator=self.generator, dtype=index_dtype).numpy()
        # A singly linked list over the positions of ``order`` still waiting; -1 ends it.
        position_dtype = np.int32 if num_rows + 1 <= np.iinfo(np.int32).max else np.int64
        next_positions = np.arange(1, num_rows + 1, dtype=position_dtype)
        next_positions[-1] = -1
        head = 0
        while head != -1:
            batch, head = self._take_batch(order, next_positions, head, values_of)
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def _take_batch(
        self, order: np.ndarray, next_positions: np.ndarray, head: int, values_of: Callable[[int], _SampleValues]
    ) -> tuple[list[int], int]:
        """Walk the waiting list from ``head``, unlinking each sample that fits; return the batch and new head."""
        batch: list[int] = []
        batch_values: set[str | int] = set()
        previous, current = -1, head
        while current != -1 and len(batch) < self.batch_size:
            following = int(next_positions[current])
            index = int(order[current])
            values = values_of(index)
            if values.isdisjoint(batch_values):
                batch.append(index)
                batch_values.update(values)
                if previous == -1:
                    head = following
                else:
                    next_positions[previous] = following
            else:
                previous = current
            current = following
        return batch, head

    def _values_getter(self) -> Callable[[int], _SampleValues]:
        """How to read a sample's values for the duplicate check: hashes if precomputed, else value keys."""
        if self.precompute_hashes:
            row_hashes = self._build_hashes()
            return lambda index: set(row_hashes[index].tolist())
        dataset = self.dataset
        return lambda index: {_value_key(v) for k, v in dataset[index].items() if k not in EXCLUDED_COLUMNS}

    def _build_hashes(self) -> np.ndarray:
        """Hash every value once (they depend on the data, not the epoch): ``(rows, compared columns)`` int64."""
        if self._row_hashes is None:
            columns = [column for column in self.dataset.column_names if column not in EXCLUDED_COLUMNS]
            hashed = self.dataset.map(
                _hash_batch,
                batched=True,
                batch_size=self.precompute_batch_size,
                num_proc=self.precompute_num_proc,
                remove_columns=self.dataset.column_names,
                fn_kwargs={"columns": columns},
                desc="Hashing dataset values",
            )
            lists = hashed.data.column("__hashes").combine_chunks()  # one list of len(columns) hashes per row
            values = lists.values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            self._row_hashes = values.reshape(len(hashed), len(columns))  # (rows, columns)
        return self._row_hashes

    def __len__(self) -> int:
        """The number of batches promised to the DataLoader, from the sizes alone (see the class docstring)."""
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return (len(self.dataset) + self.batch_size - 1) // self.batch_size
