"""The training and evaluation DataLoaders: datasets, batch samplers and the collator put together."""

from __future__ import annotations

import logging
from typing import Any

import torch
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict
from torch.utils.data import BatchSampler, ConcatDataset, DataLoader, RandomSampler

from embedstack.training.args import SentenceTransformerTrainingArguments
from embedstack.training.multi_dataset_samplers import ProportionalBatchSampler, RoundRobinBatchSampler
from embedstack.training.samplers import (
    BatchSamplers,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    MultiDatasetBatchSamplers,
    NoDuplicatesBatchSampler,
)

logger = logging.getLogger(__name__)


def batch_sampler(
    args: SentenceTransformerTrainingArguments,
    dataset: Dataset,
    *,
    batch_size: int,
    valid_label_columns: list[str],
    generator: torch.Generator,
) -> BatchSampler | None:
    """The batch sampler ``args.batch_sampler`` names, for one dataset."""
    kwargs: dict[str, Any] = {
        "batch_size": batch_size,
        "drop_last": args.dataloader_drop_last,
        "valid_label_columns": valid_label_columns,
        "generator": generator,
        "seed": args.seed,
    }
    chosen = args.batch_sampler
    if callable(chosen) and not isinstance(chosen, BatchSamplers):  # a sampler class or a factory
        return chosen(dataset, **kwargs)
    if isinstance(dataset, IterableDataset):
        if chosen != BatchSamplers.BATCH_SAMPLER:
            logger.warning("An IterableDataset is read in order; batch_sampler=%r is ignored.", str(chosen))
        return None
    if chosen == BatchSamplers.NO_DUPLICATES:
        return NoDuplicatesBatchSampler(dataset, **kwargs)
    if chosen == BatchSamplers.NO_DUPLICATES_HASHED:
        return NoDuplicatesBatchSampler(dataset, precompute_hashes=True, **kwargs)
    if chosen == BatchSamplers.GROUP_BY_LABEL:
        return GroupByLabelBatchSampler(dataset, **kwargs)
    return DefaultBatchSampler(RandomSampler(dataset, generator=generator), **kwargs)


def multi_dataset_sampler(
    args: SentenceTransformerTrainingArguments,
    dataset: ConcatDataset,
    samplers: list[BatchSampler],
    generator: torch.Generator,
) -> BatchSampler:
    """The sampler that interleaves the batches of several datasets."""
    chosen = args.multi_dataset_batch_sampler
    kwargs: dict[str, Any] = {"batch_samplers": samplers, "generator": generator, "seed": args.seed}
    if callable(chosen) and not isinstance(chosen, MultiDatasetBatchSamplers):  # a sampler class or a factory
        built: BatchSampler = chosen(dataset, **kwargs)
        return built
    if chosen == MultiDatasetBatchSamplers.ROUND_ROBIN:
        return RoundRobinBatchSampler(dataset=dataset, **kwargs)
    return ProportionalBatchSampler(dataset=dataset, **kwargs)


def build_dataloader(
    args: SentenceTransformerTrainingArguments,
    dataset: Any,
    collator: Any,
    *,
    batch_size: int,
    kind: str,
) -> DataLoader:
    """A DataLoader over a Dataset, DatasetDict or IterableDataset, with the samplers of ``args``."""
    generator = torch.Generator()
    if args.seed is not None:
        generator.manual_seed(args.seed)
    params: dict[str, Any] = {
        "collate_fn": collator,
        "num_workers": args.dataloader_num_workers,
        "pin_memory": args.dataloader_pin_memory,
        "persistent_workers": args.dataloader_persistent_workers,
        "prefetch_factor": args.dataloader_prefetch_factor,
    }
    labels = list(collator.valid_label_columns)
    if isinstance(dataset, IterableDataset):
        params.update(batch_size=batch_size, drop_last=args.dataloader_drop_last)
    elif isinstance(dataset, IterableDatasetDict):
        raise ValueError(f"The {kind} dataset is an IterableDatasetDict, which is not supported; use a DatasetDict.")
    elif isinstance(dataset, DatasetDict):
        if any(isinstance(part, IterableDataset) for part in dataset.values()):
            raise ValueError(f"The {kind} DatasetDict holds an IterableDataset, which is not supported.")
        samplers = [
            batch_sampler(args, part, batch_size=batch_size, valid_label_columns=labels, generator=generator)
            for part in dataset.values()
        ]
        dataset = ConcatDataset(list(dataset.values()))
        params["batch_sampler"] = multi_dataset_sampler(args, dataset, samplers, generator)  # type: ignore[arg-type]
    elif isinstance(dataset, Dataset):
        params["batch_sampler"] = batch_sampler(
            args, dataset, batch_size=batch_size, valid_label_columns=labels, generator=generator
        )
    else:
        raise ValueError(
            f"The {kind} dataset is a {type(dataset).__name__}; pass a Dataset, DatasetDict or IterableDataset."
        )
    return DataLoader(dataset, **params)
