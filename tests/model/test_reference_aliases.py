"""The reference's remaining public names on SentenceTransformer: evaluate, the deprecated encode_multi_process
and truncate_sentence_embeddings, and the class attributes integrations read; each gives what the reference's
does, computed in the same run."""

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference

from embedstack import SentenceTransformer


def test_class_attributes_match_the_reference():
    assert SentenceTransformer.default_huggingface_organization == Reference.default_huggingface_organization
    assert SentenceTransformer.model_card_data_class().task_name == "retrieval"


def test_evaluate_calls_the_evaluator_with_the_model_and_makes_its_folder(minilm, tmp_path):
    calls = []

    def evaluator(model, output_path):
        calls.append((model, output_path))
        return {"score": 1.0}

    assert minilm.evaluate(evaluator, str(tmp_path / "eval" / "out")) == {"score": 1.0}
    assert calls == [(minilm, str(tmp_path / "eval" / "out"))] and (tmp_path / "eval" / "out").is_dir()


def test_the_deprecated_names_warn_and_do_what_their_replacements_do(minilm, minilm_pool, reference_minilm):
    texts = ["A man is eating food.", "A man is riding a horse."]
    with pytest.warns(FutureWarning, match="truncate_embeddings"), minilm.truncate_sentence_embeddings(32):
        ours = minilm.encode(texts)
    with pytest.warns(FutureWarning), reference_minilm.truncate_sentence_embeddings(32):
        theirs = reference_minilm.encode(texts)
    assert ours.shape == theirs.shape == (2, 32)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    with pytest.warns(FutureWarning, match="encode_multi_process is deprecated"):
        pooled = minilm.encode_multi_process(texts, minilm_pool, normalize_embeddings=True)
    np.testing.assert_allclose(pooled, minilm.encode(texts, normalize_embeddings=True), atol=1e-5)
