"""CrossEncoder.predict through the shared engine: pairs tokenized once and batched by token budget (little padding,
duplicates once) with the scores of fixed-size batches, the reference's output types, prompts on the first text,
worker processes, and clear errors for inputs that are not pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import CrossEncoder as Reference

from embedstack import CrossEncoder
from embedstack.engine import EncodePlan, run
from helpers import parity_texts


@pytest.fixture(scope="module")
def model(cross_encoder_path):
    return CrossEncoder(str(cross_encoder_path), device="cpu")


@pytest.fixture(scope="module")
def pairs():
    texts = parity_texts()
    return [(texts[i], texts[(i * 7 + 3) % len(texts)]) for i in range(len(texts))]


def test_token_budget_batches_give_the_scores_of_fixed_size_batches(model, pairs):
    budget = model.predict(pairs)
    assert np.abs(budget - model.predict(pairs, batch_size=3)).max() <= 1e-5
    assert np.abs(budget - model.predict(pairs, max_batch_tokens=256)).max() <= 1e-5


def test_pairs_are_sorted_by_token_count_so_batches_carry_little_padding(model, pairs):
    many = pairs * 4 + [(a + " " + a, b) for a, b in pairs]
    plan = EncodePlan(output_value="scores", device=torch.device("cpu"))
    result = run(model, many, plan)
    assert result.stats.unique_inputs == len(set(many)) < len(many)  # each duplicate pair computed once
    assert result.outputs.shape == (len(many), 1)
    assert result.stats.padding_overhead < 0.15
    in_order = model.predict(many, activation_fn=torch.nn.Identity())
    assert np.abs(result.outputs[:, 0].numpy() - in_order).max() <= 1e-5


def test_output_types_follow_the_reference(model, cross_encoder_path, pairs):
    reference = Reference(str(cross_encoder_path), device="cpu")
    tensor = model.predict(pairs[:3], convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (3,)
    listed = model.predict(pairs[:3], convert_to_numpy=False)
    theirs = reference.predict(pairs[:3], convert_to_numpy=False)
    assert isinstance(listed, list) and len(listed) == len(theirs) == 3 and isinstance(listed[0], torch.Tensor)
    assert isinstance(model.predict([]), np.ndarray) and model.predict([]).shape == reference.predict([]).shape == (0,)
    assert isinstance(model.predict(list(pairs[0])), np.float32)  # one pair as a list: one score
    array = np.array(pairs[:2])
    assert np.abs(model.predict(array) - reference.predict(array)).max() <= 1e-5


def test_a_prompt_goes_before_the_first_text_of_each_pair(model, cross_encoder_path, pairs):
    reference = Reference(str(cross_encoder_path), device="cpu", prompts={"query": "query: "})
    ours = CrossEncoder(str(cross_encoder_path), device="cpu", prompts={"query": "query: "})
    prompted = ours.predict(pairs[:5], prompt_name="query")
    assert np.abs(prompted - reference.predict(pairs[:5], prompt_name="query")).max() <= 1e-5
    by_hand = model.predict([("query: " + a, b) for a, b in pairs[:5]])
    assert np.abs(prompted - by_hand).max() <= 1e-6 and np.abs(prompted - model.predict(pairs[:5])).max() > 1e-4


def test_worker_processes_give_the_same_scores(model, pairs):
    spread = model.predict(pairs[:20], device=["cpu", "cpu"])
    assert np.abs(spread - model.predict(pairs[:20])).max() <= 1e-5
    ranked = model.rank(pairs[0][0], [b for _, b in pairs[:10]], device=["cpu", "cpu"])
    assert [hit["corpus_id"] for hit in ranked] == [
        hit["corpus_id"] for hit in model.rank(pairs[0][0], [b for _, b in pairs[:10]])
    ]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["one text", "another", "a third"], "Input 0 is .* two items"),  # a flat list is one pair, as in the reference
        ([("a", "b"), "c"], "Input 1 is 'c'"),
        ([("a", "b", "c")], "Input 0 is .* two items"),
        ("one text", "pair .* got a str"),
    ],
)
def test_inputs_that_are_not_pairs_get_a_clear_error(model, inputs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        model.predict(inputs)


def test_bad_batch_size_is_refused(model, pairs):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(pairs, batch_size=0)
