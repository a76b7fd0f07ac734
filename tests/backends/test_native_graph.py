"""The native BERT's traced inference graph: bit-identical to its eager forward over many shapes, eager where the
trace does not apply, traced again when the weights move, and carried through copies without the graph."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from embedstack import SentenceTransformer
from embedstack.backends.native import NativeTransformer
from embedstack.backends.native_graph import GraphForward
from embedstack.modules import Pooling, Transformer
from helpers import short_texts


@pytest.fixture(scope="module")
def native(tiny_bert_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("graph") / "model"
    built = SentenceTransformer(
        modules=[Transformer(str(tiny_bert_path), max_seq_length=64), Pooling(32, "mean")], device="cpu"
    )
    built.save(str(folder))
    model = SentenceTransformer(str(folder), backend="native", device="cpu")
    assert isinstance(model[0], NativeTransformer)
    return model


def _batches(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    words = " ".join(short_texts()).split()
    for _ in range(25):
        texts = [" ".join(rng.choice(words, int(rng.integers(1, 40)))) for _ in range(int(rng.integers(1, 12)))]
        yield model[0].preprocess(texts)


def test_the_graph_gives_the_eager_outputs_to_the_bit_over_batch_sizes_and_lengths(native):
    graph = GraphForward(native[0].model)
    shapes = set()
    with torch.inference_mode():
        for features in _batches(native):
            ids, mask, types = features["input_ids"], features["attention_mask"], features["token_type_ids"]
            shapes.add(tuple(ids.shape))
            eager = native[0].model(ids, mask, types).last_hidden_state
            assert torch.equal(graph(ids, mask, types), eager)
    assert graph.graph is not None  # the graph ran, not the eager fallback
    assert len({s[0] for s in shapes}) > 5 and len({s[1] for s in shapes}) > 5  # one trace, many shapes


def test_encode_runs_the_graph_and_gives_the_eager_vectors(native):
    texts = short_texts() * 3
    traced = native.encode(texts, batch_size=4)
    assert native[0]._graph.graph is not None
    eager_module = native[0]._graph
    native[0]._graph = GraphForward(native[0].model)
    native[0]._graph._failed = True  # as when tracing is not possible: the eager forward
    try:
        np.testing.assert_array_equal(native.encode(texts, batch_size=4), traced)
    finally:
        native[0]._graph = eager_module


def test_gradients_and_missing_inputs_run_eagerly(native):
    graph = GraphForward(native[0].model)
    features = next(_batches(native))
    ids, mask = features["input_ids"], features["attention_mask"]
    with torch.no_grad():
        without_types = graph(ids, mask, None)  # no token types: eager, not traced
    assert graph.graph is None
    with torch.no_grad():
        np.testing.assert_array_equal(graph(ids, mask, torch.zeros_like(ids)).numpy(), without_types.numpy())
    hidden = graph(ids, mask, torch.zeros_like(ids))  # gradients on (outside no_grad): eager, so it trains
    assert hidden.requires_grad


def test_a_change_of_dtype_traces_again(native):
    model = copy.deepcopy(native)
    features = next(_batches(model))
    with torch.inference_mode():
        model(features)
        first = model[0]._graph.traced_for
        model.to(torch.float64)
        out = model(model[0].preprocess(["a text in double precision"]))["token_embeddings"]
    assert out.dtype == torch.float64 and model[0]._graph.traced_for != first


def test_copies_and_pickles_carry_no_graph_and_trace_their_own(native):
    native.encode(short_texts())
    for other in (copy.deepcopy(native), pickle.loads(pickle.dumps(native))):
        assert other[0]._graph.graph is None and other[0]._graph.encoder is other[0].model
        np.testing.assert_array_equal(other.encode(short_texts()), native.encode(short_texts()))
        assert other[0]._graph.graph is not None
