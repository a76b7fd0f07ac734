"""The data collator: a list of dataset rows in, one batch of ``{column}_{feature}`` tensors and labels out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

logger = logging.getLogger(__name__)

LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "score", "scores")
# Column names with a usual position; a dataset that puts them elsewhere probably trains the wrong direction.
_EXPECTED_POSITION = {
    "anchor": 0,
    "positive": 1,
    "negative": 2,
    "question": 0,
    "answer": 1,
    "query": 0,
    "response": 1,
    "hypothesis": 0,
    "entailment": 1,
    "contradiction": 2,
}


@dataclass
class SentenceTransformerDataCollator:
    """Preprocess each text column with ``preprocess_fn`` (the model's ``preprocess``), as sentence-transformers does.

    The label column (the first of ``valid_label_columns`` present) becomes ``label``; every other column, in
    order, becomes ``{column}_input_ids``, ``{column}_attention_mask``, ... Column order matters: losses take the
    first column as the anchor, the second as the positive.

    Args:
        preprocess_fn: Turns a list of inputs into features, given ``prompt`` and ``task``.
        valid_label_columns: Names a label column may have.
        router_mapping: Column name to Router route, or dataset name to such a dict.
        prompts: One prompt, per column, per dataset, or per dataset and column.
    """

    preprocess_fn: Callable[..., dict[str, Any]]
    valid_label_columns: list[str] = field(default_factory=lambda: list(LABEL_COLUMNS))
    router_mapping: dict[str, Any] | None = field(default_factory=dict, repr=False)
    prompts: str | dict[str, Any] | None = field(default_factory=dict, repr=False)
    _warned: set[tuple[str, ...]] = field(default_factory=set, init=False, repr=False)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Collate dataset rows into one batch."""
        if not features:
            return {}
        columns = list(features[0])
        batch: dict[str, Any] = {}
        if "dataset_name" in columns:
            columns.remove("dataset_name")
            batch["dataset_name"] = features[0]["dataset_name"]
        self._warn_about_order(columns)
        label = next((name for name in self.valid_label_columns if name in columns), None)
        if label is not None:
            values = [row[label] for row in features]
            batch["label"] = torch.stack(values) if isinstance(values[0], torch.Tensor) else torch.tensor(values)
            columns.remove(label)
        routes = self._for_dataset(self.router_mapping, batch, "router_mapping")
        prompts = self._for_dataset(self.prompts, batch, "prompts")
        for column in columns:
            task = routes.get(column) if isinstance(routes, dict) else None
            prompt = prompts if isinstance(prompts, str) else (prompts or {}).get(column)
            encoded = self.preprocess_fn([row[column] for row in features], prompt=prompt, task=task)
            for key, value in encoded.items():
                batch[f"{column}_{key}"] = value
            if task is not None:
                batch[f"{column}_task"] = task
        return batch

    @staticmethod
    def _for_dataset(setting: Any, batch: dict[str, Any], name: str) -> Any:
        """A per-dataset setting resolved for this batch's dataset (flat settings apply to every dataset)."""
        if not isinstance(setting, dict) or not setting:
            return setting or {}
        dataset = batch.get("dataset_name")
        if dataset is not None and dataset in setting:
            return setting[dataset]
        if isinstance(next(iter(setting.values())), dict):
            if dataset is None:
                raise ValueError(
                    f"The {name} are given per dataset ({sorted(setting)}), but the dataset is a single Dataset, so "
                    f"no dataset name applies. Pass a DatasetDict with those names, or a flat {name} dict."
                )
            return {}
        return setting

    def _warn_about_order(self, columns: list[str]) -> None:
        if tuple(columns) in self._warned:
            return
        self._warned.add(tuple(columns))
        for name, expected in _EXPECTED_POSITION.items():
            if name in columns and columns.index(name) != expected:
                logger.warning(
                    "Column %r is at position %d of the dataset, where such a column usually sits at %d. Losses take "
                    "the first column as the anchor and the second as the positive, whatever their names; reorder "
                    "the columns with dataset.select_columns([...]) if this is not what you mean.",
                    name,
                    columns.index(name),
                    expected,
                )
                return
