"""Engine logic: ordering, dedupe, token budgets, streaming, and the general (non-tokenizing) path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from embedstack import SentenceTransformer
from embedstack.engine import EncodePlan, default_max_batch_tokens, run, stream
from embedstack.engine.batching import dedupe, longest_first, token_budget_batches
from embedstack.engine.threads import available_cpus, limit_cpu_threads
from embedstack.evaluation.corpora import CORPORA
from embedstack.modules import InputModule, Pooling, Transformer


@pytest.fixture(scope="module")
def model(tiny_bert_path):
    return SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")


def texts(n: int = 60) -> list[str]:
    rng = np.random.default_rng(0)
    words = "the quick brown fox jumps over a lazy dog while seven wizards box in jolly pubs".split()
    return [" ".join(rng.choice(words, size=int(rng.integers(0, 40)))) for _ in range(n)]


def reference_vectors(model, items):
    """One input at a time through the tokenizer's own padding: no batching effects at all."""
    rows = []
    with torch.inference_mode():
        for item in items:
            rows.append(model(model.preprocess([item]))["sentence_embedding"][0])
    return torch.stack(rows).numpy()


def test_token_budget_batches_respect_both_limits():
    lengths = np.array([5, 100, 30, 30, 7, 1, 64, 64, 64])
    order = longest_first(lengths)
    batches = list(token_budget_batches(order, lengths, max_batch_tokens=128, batch_size=3))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 128
    assert batches[0].tolist() == [1]  # longest first; 100 tokens leave room for one row
    oversized = list(token_budget_batches(np.array([0]), np.array([500]), max_batch_tokens=128, batch_size=3))
    assert [b.tolist() for b in oversized] == [[0]]


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=300),
    budget=st.integers(1, 4096),
    rows=st.one_of(st.none(), st.integers(1, 64)),
    overhead=st.integers(0, 500),
)
def test_token_budget_batches_cover_every_input_once_within_the_limits(lengths, budget, rows, overhead):
    lengths = np.array(lengths)
    order = longest_first(lengths)
    batches = list(
        token_budget_batches(order, lengths, max_batch_tokens=budget, batch_size=rows, pass_overhead_tokens=overhead)
    )
    assert np.concatenate(batches).tolist() == order.tolist()  # in order, each input once
    for batch in batches:
        assert len(batch) >= 1 and (rows is None or len(batch) <= rows)
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= budget


def test_without_a_row_cap_the_token_budget_decides_the_rows():
    lengths = np.array([9] * 500 + [8] * 500)
    order = longest_first(lengths)
    uncapped = [len(b) for b in token_budget_batches(order, lengths, max_batch_tokens=2048, batch_size=None)]
    assert uncapped == [227, 227, 46, 256, 244]  # the 9-token rows, then the 8-token ones: never mixed
    capped = [len(b) for b in token_budget_batches(order, lengths, max_batch_tokens=2048, batch_size=32)]
    assert max(capped) == 32 and sum(capped) == 1000


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_engine_padding_is_under_three_percent_on_every_benchmark_corpus(minilm, corpus):
    texts = list(dict.fromkeys(CORPORA[corpus]()))
    lengths = minilm.token_batcher.tokenize_unpadded(texts).lengths
    budget = default_max_batch_tokens(torch.device("cpu"), minilm.token_batcher.get_embedding_dimension())
    batches = list(token_budget_batches(longest_first(lengths), lengths, max_batch_tokens=budget))
    padded = sum(len(batch) * int(lengths[batch].max()) for batch in batches)
    assert padded / lengths.sum() - 1 < 0.03
    assert len(batches) < len(texts) / 8  # and the cuts leave large passes


def test_encode_takes_batch_size_none_as_its_default_and_checks_other_values(model):
    items = texts(300)
    expected = reference_vectors(model, items)
    np.testing.assert_allclose(model.encode(items), expected, atol=1e-5)
    np.testing.assert_allclose(model.encode(items, batch_size=None), expected, atol=1e-5)
    words = "the quick brown fox jumps over a lazy dog".split()
    rng = np.random.default_rng(1)
    alike = [" ".join(rng.choice(words, size=20)) for _ in range(300)]  # one length: no cuts where lengths change
    stats = run(model, alike, EncodePlan(device=model.device)).stats
    assert stats.batches < len(alike) / 32  # rows beyond the sentence-transformers default of 32 per pass
    for bad in (0, -1, 2.5, "32", True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
            model.encode(items[:2], batch_size=bad)


@pytest.mark.parametrize("prefetch", [True, False])
def test_stream_gives_the_same_vectors_with_and_without_the_prefetch_thread(model, prefetch):
    items = texts(120)
    plan = EncodePlan(device=model.device)
    got = np.concatenate([r.embeddings.numpy() for r in stream(model, items, plan, window_size=50, prefetch=prefetch)])
    np.testing.assert_allclose(got, model.encode(items), atol=1e-5)


def test_dedupe_maps_every_input_to_its_unique_copy():
    items = ["a", "b", "a", ("a", "b"), ["a", "b"], "b", {"image": 1}]
    unique, inverse = dedupe(items)
    assert unique == ["a", "b", ("a", "b"), {"image": 1}]
    assert [unique[i] if not isinstance(unique[i], tuple) else list(unique[i]) for i in inverse][:3] == ["a", "b", "a"]
    assert inverse.tolist() == [0, 1, 0, 2, 2, 1, 3]


@pytest.mark.parametrize("budget", [64, 256, 100_000])
def test_engine_vectors_equal_one_at_a_time_encoding(model, budget):
    items = texts()
    expected = reference_vectors(model, items)
    got = model.encode(items, batch_size=16, max_batch_tokens=budget)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_duplicates_are_encoded_once(model):
    items = texts(20)
    doubled = items + items[::-1] + items[:5]
    plan = EncodePlan(batch_size=8, device=model.device)
    result = run(model, doubled, plan)
    assert result.stats.unique_inputs == len(set(items)) and result.stats.inputs == len(doubled)
    np.testing.assert_allclose(result.outputs.numpy(), model.encode(doubled, batch_size=3), atol=1e-5)
    np.testing.assert_array_equal(result.outputs[0].numpy(), result.outputs[len(items) * 2 - 1].numpy())


def test_padding_is_small_when_batching_by_tokens(model):
    plan = EncodePlan(batch_size=8, device=model.device)
    stats = run(model, texts(200), plan).stats
    assert stats.real_tokens > 0 and stats.padding_overhead < 0.1


def test_stream_matches_encode_and_keeps_order(model):
    items = texts(75)
    streamed = np.stack(list(model.encode_iter(iter(items), batch_size=8, window_size=16)))
    np.testing.assert_allclose(streamed, model.encode(items), atol=1e-5)
    assert list(model.encode_iter(iter([]))) == []
    with pytest.raises(ValueError, match="window_size"):
        list(model.encode_iter(items, window_size=0))


def test_stream_reports_truncation(model, caplog):
    saved, model[0].max_seq_length = model[0].max_seq_length, 8
    try:
        list(model.encode_iter(["one two", "one two three four five six seven eight nine"], window_size=1))
    finally:
        model[0].max_seq_length = saved
    assert "1 of 2 inputs were longer than max_seq_length=8" in caplog.text


class CharCodes(InputModule):
    """A custom input module without tokenize_unpadded: the engine must take the general path."""

    def preprocess(self, inputs, prompt=None, **kwargs):
        inputs = [(prompt or "") + text for text in inputs]
        width = max(1, max(len(text) for text in inputs))
        codes = torch.zeros(len(inputs), width, 4)
        mask = torch.zeros(len(inputs), width, dtype=torch.long)
        for row, text in enumerate(inputs):
            for col, char in enumerate(text):
                codes[row, col] = torch.tensor([ord(char) % 7, ord(char) % 5, ord(char) % 3, 1.0])
                mask[row, col] = 1
        return {"token_embeddings": codes, "attention_mask": mask}

    def forward(self, features, **kwargs):
        return features

    def save(self, output_path, *args, **kwargs):
        pass


def test_custom_input_modules_use_the_general_path():
    model = SentenceTransformer(modules=[CharCodes(), Pooling(4)], device="cpu")
    items = ["abc", "z", "", "hello world", "abc"]
    got = model.encode(items, batch_size=2)
    expected = np.stack([model.encode([item])[0] for item in items])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_thread_policy_never_exceeds_the_cores():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(available_cpus() + 3)
        assert limit_cpu_threads() == available_cpus()
        torch.set_num_threads(1)
        assert limit_cpu_threads() == 1  # a lower user setting is kept
    finally:
        torch.set_num_threads(before)
