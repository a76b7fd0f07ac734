"""Vendored from sentence-transformers: tests/sparse_encoder/modules/test_sparse_static_embedding.py of
huggingface/sentence-transformers at
commit cad211983f36ce458e9b3360f3e11b29fc54cbd8 (main, 2026-08-21, version 6.1.0.dev0; see test_st_se_model.py for
why that revision). Apache-2.0, Copyright the sentence-transformers authors.

Changed from upstream: the import alias (``from embedstack import SparseEncoder`` and embedstack's
``SparseStaticEmbedding``); ``sparse_allclose`` from st_se_utils.py (upstream's tests/sparse_encoder/utils.py); the
``inference_free_splade_bert_tiny_model`` fixture is the tiny local stand-in of conftest.py in this folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from st_se_utils import sparse_allclose

from embedstack import SparseEncoder
from embedstack.modules import SparseStaticEmbedding


def test_sparse_static_embedding_padding_ignored(inference_free_splade_bert_tiny_model: SparseEncoder) -> None:
    model = inference_free_splade_bert_tiny_model

    input_texts = ["This is a test input", "This is a considerably longer test input to check padding behavior."]

    # Encode the input texts
    batch_embeddings = model.encode_query(input_texts, save_to_cpu=True)

    single_embeddings = [model.encode_query(text, save_to_cpu=True) for text in input_texts]
    single_embeddings = torch.stack(single_embeddings)

    # Check that the batch embeddings match the single embeddings
    assert sparse_allclose(batch_embeddings, single_embeddings, atol=1e-6), (
        "Batch encoding does not match single encoding."
    )


def test_sparse_static_embedding_save_load(
    inference_free_splade_bert_tiny_model: SparseEncoder, tmp_path: Path
) -> None:
    model = inference_free_splade_bert_tiny_model

    assert isinstance(model[0].sub_modules.query[0], SparseStaticEmbedding), "SparseStaticEmbedding component missing"

    # Let's randomize the weights to ensure that we can check if they are maintained after saving and loading
    # (upstream's line, kept as it is: a comparison, so the weights are not actually changed)
    model[0].sub_modules.query[0].weight == torch.rand_like(model[0].sub_modules.query[0].weight)  # noqa: B015

    # Define test inputs
    test_inputs = ["This is a simple test.", "Another example text for testing."]

    # Get embeddings before saving
    original_embeddings = model.encode_query(test_inputs, save_to_cpu=True)

    # Save the model
    save_path = tmp_path / "test_sparse_static_embedding_model"
    model.save_pretrained(save_path)

    # Load the model
    loaded_model = SparseEncoder(str(save_path))

    # Get embeddings after loading
    loaded_embeddings = loaded_model.encode_query(test_inputs, save_to_cpu=True)

    # Check if embeddings are the same before and after save/load
    assert sparse_allclose(original_embeddings, loaded_embeddings, atol=1e-6), "Embeddings changed after save and load"

    # Check if SparseStaticEmbedding weights are maintained after loading
    assert isinstance(loaded_model[0].sub_modules.query[0], SparseStaticEmbedding), (
        "SparseStaticEmbedding component missing after loading"
    )
    assert torch.allclose(model[0].sub_modules.query[0].weight, loaded_model[0].sub_modules.query[0].weight), (
        "SparseStaticEmbedding weights changed after save and load"
    )
