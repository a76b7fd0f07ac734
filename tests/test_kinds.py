"""Which kind a folder holds (what the CLI and the server load): the saved model_type, a Hugging Face classifier
as a CrossEncoder, everything else as a SentenceTransformer, as sentence-transformers decides it; and a folder of a
kind embedstack does not have is refused with the reason."""

from __future__ import annotations

import json
import shutil

import pytest

from embedstack import CrossEncoder, SentenceTransformer, SparseEncoder
from embedstack.kinds import load_model, model_kind
from embedstack.persistence.layout import saved_model_type


def test_each_folder_says_its_kind(cross_encoder_path, tiny_bert_path, stack_folder, tmp_path):
    CrossEncoder(str(cross_encoder_path), device="cpu").save(str(tmp_path / "saved"))
    assert saved_model_type(tmp_path / "saved") == "CrossEncoder"
    assert saved_model_type(cross_encoder_path) == "CrossEncoder"  # a plain classifier: an old cross-encoder folder
    assert saved_model_type(tiny_bert_path) == "SentenceTransformer"
    assert saved_model_type(stack_folder) == "SentenceTransformer"
    old = tmp_path / "old-st"
    shutil.copytree(stack_folder, old)
    (old / "config_sentence_transformers.json").write_text(
        json.dumps({"__version__": {"sentence_transformers": "2.0"}})
    )
    assert saved_model_type(old) == "SentenceTransformer"  # no model_type: an embedding model, as in the reference


def test_load_model_builds_the_kind_the_folder_holds(cross_encoder_path, stack_folder, mlm_path, tmp_path):
    assert isinstance(load_model(str(cross_encoder_path), device="cpu", cache=None), CrossEncoder)
    assert isinstance(load_model(str(stack_folder), device="cpu"), SentenceTransformer)
    SparseEncoder(str(mlm_path), device="cpu").save(str(tmp_path / "sparse"))
    assert saved_model_type(tmp_path / "sparse") == "SparseEncoder"
    assert isinstance(load_model(str(tmp_path / "sparse"), device="cpu", cache=None), SparseEncoder)


def test_a_kind_embedstack_does_not_have_is_refused(stack_folder, tmp_path):
    folder = tmp_path / "sparse"
    shutil.copytree(stack_folder, folder)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    (folder / "config_sentence_transformers.json").write_text(json.dumps({**config, "model_type": "SomeOtherEncoder"}))
    with pytest.raises(ValueError, match="model_type 'SomeOtherEncoder'"):
        model_kind(str(folder))
