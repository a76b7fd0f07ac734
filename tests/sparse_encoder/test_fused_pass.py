"""The SPLADE pass that never builds the (batch, tokens, vocab) logits: pooling from the MLM head's input
(SpladePooling.pool_decoded), the head stopped before its projection (mlm_head.decoder_and_inputs), and the model's
fused forward, which must give the ordinary pass's vectors or fall back to it."""

from __future__ import annotations

import threading

import pytest
import torch

from embedstack import SparseEncoder
from embedstack.modules.splade_pooling import SpladePooling
from embedstack.modules.transformer.mlm_head import decoder_and_inputs
from embedstack.sparse_encoder import fused

TEXTS = ["a short one", "a much longer text than the others, " * 6, "x", "the weather is lovely today"]


@pytest.mark.parametrize("strategy", ["max", "sum"])
@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
@pytest.mark.parametrize("chunk_size", [None, 1, 3, 7])
def test_pool_decoded_equals_pooling_the_logits(strategy, activation, chunk_size):
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(4, 9, 6), torch.randn(50, 6), torch.randn(50)
    mask = torch.tensor([[1] * 9, [1] * 4 + [0] * 5, [0] * 9, [1] * 2 + [0] * 7])  # a row without tokens, too
    logits = hidden @ weight.t() + bias
    pooling = SpladePooling(strategy, activation, chunk_size=chunk_size)
    expected = pooling({"token_embeddings": logits.clone(), "attention_mask": mask})["sentence_embedding"]
    pooled = pooling.pool_decoded(hidden, mask, weight, bias)
    torch.testing.assert_close(pooled, expected, rtol=1e-5, atol=1e-5)
    assert pooled[2].abs().sum() == 0  # no tokens: zero, as the ordinary pooling gives
    no_bias = pooling({"token_embeddings": hidden @ weight.t(), "attention_mask": mask})["sentence_embedding"]
    torch.testing.assert_close(pooling.pool_decoded(hidden, mask, weight, None), no_bias, rtol=1e-5, atol=1e-5)


def test_the_head_stops_before_its_projection(mlm_path):
    model = SparseEncoder(str(mlm_path), device="cpu")
    transformer = model[0]
    features = transformer.preprocess(TEXTS)
    ordinary = transformer(dict(features))["token_embeddings"]
    out, hidden, decoder = decoder_and_inputs(transformer.model, transformer, dict(features))
    assert decoder is transformer.model.get_output_embeddings()
    assert hidden is not None and hidden.shape[:-1] == ordinary.shape[:-1]
    assert out["token_embeddings"].shape == ordinary.shape and out["token_embeddings"].stride() == (0, 0, 0)
    torch.testing.assert_close(decoder(hidden), ordinary)
    # the hooks are gone afterwards, and another thread meanwhile gets real logits
    assert not decoder._forward_hooks and not decoder._forward_pre_hooks
    seen = []
    worker = threading.Thread(target=lambda: seen.append(transformer(dict(features))["token_embeddings"]))
    main = threading.get_ident()

    def run_the_other_thread(module, args):
        if threading.get_ident() == main:
            worker.start()
            worker.join()

    decoder.register_forward_pre_hook(run_the_other_thread)
    try:
        decoder_and_inputs(transformer.model, transformer, dict(features))
    finally:
        decoder._forward_pre_hooks.clear()
    torch.testing.assert_close(seen[0], ordinary)


@pytest.mark.parametrize("strategy", ["max", "sum"])
def test_encode_gives_the_ordinary_vectors(mlm_path, strategy, monkeypatch):
    model = SparseEncoder(str(mlm_path), device="cpu")
    model[1].pooling_strategy = strategy
    assert fused.fused_splade_forward(model.eval()) is not None
    ours = model.encode(TEXTS, convert_to_sparse_tensor=False, batch_size=1)  # passes after the checked first one
    assert fused._CHECKED[model[0]] is True  # the fused pass computed them
    monkeypatch.setattr("embedstack.sparse_encoder.model.fused_splade_forward", lambda model: None)
    ordinary = model.encode(TEXTS, convert_to_sparse_tensor=False)
    torch.testing.assert_close(ours, ordinary, rtol=1e-5, atol=1e-5)


def test_a_head_that_changes_its_logits_keeps_the_ordinary_pass(mlm_path):
    """A head that rescales its logits after the projection: the first pass compares, finds the difference and
    keeps the ordinary pass for this model; the vectors are the ordinary ones throughout."""
    model = SparseEncoder(str(mlm_path), device="cpu")
    hf_model = model[0].model
    plain_forward = hf_model.forward

    def rescaled(*args, **kwargs):
        output = plain_forward(*args, **kwargs)
        output.logits = output.logits * 2.0
        return output

    hf_model.forward = rescaled
    expected = SpladePooling("max")
    features = model[0].preprocess(TEXTS)
    expected = expected(model[0](dict(features)))["sentence_embedding"]
    got = model.encode(TEXTS, convert_to_sparse_tensor=False, batch_size=1)  # passes after the first, too
    assert fused._CHECKED[model[0]] is False
    assert fused.fused_splade_forward(model) is None
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_other_stacks_and_training_use_the_ordinary_pass(mlm_path):
    model = SparseEncoder(str(mlm_path), device="cpu")
    assert fused.fused_splade_forward(model.eval()) is not None
    model.train()
    assert fused.fused_splade_forward(model) is None
    model.eval()
    handle = model[1].register_forward_hook(lambda module, args, output: None)
    assert fused.fused_splade_forward(model) is None
    handle.remove()
    assert fused.fused_splade_forward(model) is not None


def test_a_deprecated_mlm_transformer_gets_the_fused_pass(mlm_path, tmp_path):
    from sentence_transformers import SparseEncoder as Reference
    from sentence_transformers.sparse_encoder.modules import MLMTransformer as ReferenceMLMTransformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling as ReferencePooling

    folder = tmp_path / "model"
    Reference(modules=[ReferenceMLMTransformer(str(mlm_path)), ReferencePooling("max")], device="cpu").save(str(folder))
    model = SparseEncoder(str(folder), device="cpu").eval()
    assert type(model[0]).__name__ == "MLMTransformer"
    assert fused.fused_splade_forward(model) is not None
    model.encode(TEXTS, batch_size=2)
    assert fused._CHECKED[model[0]] is True
