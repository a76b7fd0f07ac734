"""Checks and light transforms of the training datasets (Hugging Face ``datasets``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict, Value

RESERVED_COLUMNS = frozenset({"return_loss", "dataset_name"})


def check_datasets(train: Any, evaluation: Any) -> tuple[Any, Any]:
    """The datasets as the trainer takes them: dicts become DatasetDicts; streamed ones must declare features."""
    checked = []
    for kind, dataset in (("train", train), ("eval", evaluation)):
        if isinstance(dataset, IterableDataset) and dataset.column_names is None:
            raise ValueError(
                f"The {kind}_dataset is an IterableDataset without features, so its columns are unknown until read. "
                f"Declare them: {kind}_dataset = {kind}_dataset.cast(Features({{'anchor': Value('string'), ...}}))."
            )
        if isinstance(dataset, dict) and not isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            dataset = DatasetDict(dataset)
        for name, part in _parts(dataset):
            reserved = sorted(RESERVED_COLUMNS & set(part.column_names or []))
            if reserved:
                where = f"{kind} dataset {name!r}" if name else f"{kind}_dataset"
                raise ValueError(f"The {where} has columns {reserved}, whose names the trainer reserves; rename them.")
        checked.append(dataset)
    return checked[0], checked[1]


def add_dataset_names(dataset: Any, args: Any, loss: Any) -> Any:
    """A DatasetDict whose rows carry their dataset's name, when a loss, prompt or route depends on it."""
    if not isinstance(dataset, (DatasetDict, IterableDatasetDict)) or getattr(dataset, "_embedstack_named", False):
        return dataset
    per_dataset_routes = isinstance(args.router_mapping, dict) and any(
        isinstance(value, dict) for value in args.router_mapping.values()
    )
    if not (isinstance(loss, dict) or (isinstance(args.prompts, dict) and args.prompts) or per_dataset_routes):
        return dataset
    for name in list(dataset):
        part = dataset[name]
        if isinstance(part, Dataset):
            part.set_transform(partial(_with_name, name=name, **part._format_kwargs))
        else:
            features = part.features
            if features is not None:
                features["dataset_name"] = Value("string")
            dataset[name] = part.map(partial(_with_name, name=name), batched=True, features=features)
    dataset._embedstack_named = True
    return dataset


def _with_name(batch: dict[str, list[Any]], name: str, transform: Any = None, **_: Any) -> dict[str, list[Any]]:
    if transform is not None:
        batch = transform(batch)
    first = next(iter(batch.values()), None) if batch else None
    if first:
        batch["dataset_name"] = [name] * len(first)
    return batch


def _parts(dataset: Any) -> list[tuple[str | None, Any]]:
    if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
        return list(dataset.items())
    return [] if dataset is None else [(None, dataset)]
