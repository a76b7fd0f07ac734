"""Parity of embedstack's batch samplers with sentence-transformers 6.2's: the same index batches, epoch by epoch.

Each case builds our sampler and the reference's with identical arguments and identically seeded generators, and
compares every batch of two epochs. Invalid combinations (an odd batch size for group_by_label, no label column)
must raise ValueError on both sides.
"""

from __future__ import annotations

import functools
import random

import pytest
import torch
from datasets import Dataset
from sentence_transformers.base import sampler as reference
from torch.utils.data import ConcatDataset, RandomSampler

from embedstack.training import multi_dataset_samplers as ours_multi
from embedstack.training import samplers as ours

SEED = 12
LABEL_COLUMNS = ["label", "score"]


@functools.cache
def dataset(name: str) -> Dataset:
    """Small datasets with duplicate texts, within and across columns."""
    rng = random.Random(name)
    rows = 31
    words = [f"text {i}" for i in range(12)]
    columns = {"anchor": [rng.choice(words) for _ in range(rows)], "positive": [rng.choice(words) for _ in range(rows)]}
    if name == "distinct":
        columns = {"anchor": [f"a{i}" for i in range(rows)], "positive": [f"p{i % 20}" for i in range(rows)]}
    if name == "labelled":
        columns["label"] = [rng.choice([0, 1, 1, 2, 2, 2, 3]) for _ in range(rows)]
    if name == "scored":
        columns["score"] = [rng.choice([0.0, 0.5, 1.0]) for _ in range(rows)]
    if name == "named":  # the trainer's routing column, never compared
        columns["dataset_name"] = ["general"] * rows
    return Dataset.from_dict(columns)


def build(module, kind, data, batch_size, drop_last, label_columns, generator=None):
    """A sampler of ``kind`` from ``module`` (ours or the reference), as the trainer builds it."""
    generator = generator or torch.Generator().manual_seed(SEED)
    kwargs = {"valid_label_columns": label_columns, "generator": generator, "seed": SEED}
    if kind == "default":
        return module.DefaultBatchSampler(RandomSampler(data, generator=generator), batch_size, drop_last, **kwargs)
    if kind == "group_by_label":
        return module.GroupByLabelBatchSampler(data, batch_size, drop_last, **kwargs)
    hashed = kind == "no_duplicates_hashed"
    return module.NoDuplicatesBatchSampler(
        data, batch_size, drop_last, precompute_hashes=hashed, precompute_num_proc=1, **kwargs
    )


def epochs(sampler, count: int = 2) -> list[list[list[int]]]:
    passes = []
    for epoch in range(count):
        sampler.set_epoch(epoch)
        passes.append(list(sampler))
    return passes


def assert_same_batches(kind: str, name: str, batch_size: int, drop_last: bool, label_columns: list[str] | None):
    data = dataset(name)
    try:
        expected = build(reference, kind, data, batch_size, drop_last, label_columns)
    except ValueError:
        with pytest.raises(ValueError):
            build(ours, kind, data, batch_size, drop_last, label_columns)
        return
    sampler = build(ours, kind, data, batch_size, drop_last, label_columns)
    assert len(sampler) == len(expected)
    assert epochs(sampler) == epochs(expected)


# Batch sizes 3 to 6 include passes that fall short under drop_last and are resampled (pairs, labelled, scored).
@pytest.mark.parametrize("label_columns", [None, LABEL_COLUMNS])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [3, 4, 6, 8])
@pytest.mark.parametrize("name", ["pairs", "distinct", "labelled", "scored", "named"])
@pytest.mark.parametrize("kind", ["default", "no_duplicates", "group_by_label"])
def test_same_batches_as_reference(kind, name, batch_size, drop_last, label_columns):
    assert_same_batches(kind, name, batch_size, drop_last, label_columns)


# Fewer cases: each sampler hashes its dataset with datasets.map, about 0.2 s a call on either side.
@pytest.mark.parametrize(
    ("name", "batch_size", "drop_last", "label_columns"),
    [
        ("pairs", 3, True, None),
        ("pairs", 4, False, LABEL_COLUMNS),
        ("scored", 4, True, None),
        ("scored", 5, False, LABEL_COLUMNS),
        ("named", 4, True, LABEL_COLUMNS),
    ],
)
def test_hashed_same_batches_as_reference(name, batch_size, drop_last, label_columns):
    assert_same_batches("no_duplicates_hashed", name, batch_size, drop_last, label_columns)


def test_epochs_differ_and_repeat():
    sampler = build(ours, "no_duplicates", dataset("distinct"), 4, False, None)
    first, second = epochs(sampler)
    assert first != second
    assert epochs(sampler) == [first, second]


def test_short_pass_is_resampled_to_the_promised_length():
    # 12 distinct texts over two columns: a pass over 31 rows fills only 3 of 6 batches of 5, so more passes run.
    sampler = build(ours, "no_duplicates", dataset("pairs"), 5, True, None)
    first_pass = list(sampler._one_pass(sampler._values_getter()))
    assert len(first_pass) < len(sampler)
    assert [len(batch) for batch in sampler] == [5] * len(sampler)


@pytest.mark.parametrize(
    ("name", "label_columns", "hashed"),
    [(name, columns, False) for name in ["pairs", "labelled", "scored", "named"] for columns in [None, LABEL_COLUMNS]]
    + [("scored", None, True), ("labelled", LABEL_COLUMNS, True)],
)
def test_no_duplicates_within_a_batch(name, label_columns, hashed):
    data = dataset(name)
    kind = "no_duplicates_hashed" if hashed else "no_duplicates"
    sampler = build(ours, kind, data, 4, False, label_columns)
    compared = [c for c in data.column_names if c not in (label_columns or []) and c != "dataset_name"]
    batches = list(sampler)
    assert batches
    for batch in batches:
        # A row may repeat its own text (anchor == positive); no two rows of a batch share one.
        rows = [{str(data[index][column]) for column in compared} for index in batch]
        assert sum(map(len, rows)) == len(set().union(*rows)), [data[index] for index in batch]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [3, 4])
@pytest.mark.parametrize("child", ["default", "no_duplicates"])
@pytest.mark.parametrize("strategy", ["RoundRobinBatchSampler", "ProportionalBatchSampler"])
def test_multi_dataset_same_batches_as_reference(strategy, child, batch_size, drop_last):
    parts = [dataset("distinct"), dataset("scored")]

    def multi(module, multi_module):
        # As the trainer does: one generator shared by the children and the multi-dataset sampler.
        generator = torch.Generator().manual_seed(SEED)
        children = [build(module, child, part, batch_size, drop_last, LABEL_COLUMNS, generator) for part in parts]
        return getattr(multi_module, strategy)(ConcatDataset(parts), children, generator=generator, seed=SEED)

    sampler, expected = multi(ours, ours_multi), multi(reference, reference)
    assert len(sampler) == len(expected)
    assert epochs(sampler) == epochs(expected)
    assert all(child.epoch == 1 for child in sampler.batch_samplers)


def test_multi_dataset_needs_one_sampler_per_dataset():
    parts = [dataset("distinct"), dataset("pairs")]
    child = build(ours, "default", parts[0], 4, False, None)
    with pytest.raises(ValueError, match="1 batch samplers for 2 datasets"):
        ours_multi.RoundRobinBatchSampler(ConcatDataset(parts), [child])


def test_enums_match_reference_and_suggest_close_names():
    assert [m.value for m in ours.BatchSamplers] == [m.value for m in reference.BatchSamplers]
    assert [m.value for m in ours.MultiDatasetBatchSamplers] == [m.value for m in reference.MultiDatasetBatchSamplers]
    assert ours.BatchSamplers("no_duplicates") is ours.BatchSamplers.NO_DUPLICATES
    assert ours.BatchSamplers.GROUP_BY_LABEL == "group_by_label"
    with pytest.raises(ValueError, match="Did you mean: no_duplicates"):
        ours.BatchSamplers("no_duplicate")


def test_group_by_label_explains_bad_batch_size():
    with pytest.raises(ValueError, match="even number >= 4"):
        build(ours, "group_by_label", dataset("labelled"), 6 - 1, False, LABEL_COLUMNS)
