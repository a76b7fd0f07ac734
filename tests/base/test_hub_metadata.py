"""What a load from the Hub records, and the deprecated save_to_hub: a model loaded by Hub id (from the local Hub
cache, offline) names it as its card's base model, with the snapshot's commit; one loaded from a folder or with
local_files_only does not (as in sentence-transformers 6.2, which only records what it could check)."""

import warnings

import pytest
from sentence_transformers import SentenceTransformer as Reference

from embedstack import SentenceTransformer
from helpers import HUB_COMMIT, add_to_cache


def test_a_model_loaded_by_hub_id_records_its_base_model(tiny_bert_path, tmp_path):
    cache = tmp_path / "hub"
    add_to_cache(cache, "someone/tiny-bert", tiny_bert_path)
    model = SentenceTransformer("someone/tiny-bert", cache_folder=str(cache), device="cpu")
    assert (model.model_card_data.base_model, model.model_card_data.base_model_revision) == (
        "someone/tiny-bert",
        HUB_COMMIT,
    )
    model.save(tmp_path / "finetuned")
    assert "base_model: someone/tiny-bert" in (tmp_path / "finetuned" / "README.md").read_text()
    assert SentenceTransformer(str(tmp_path / "finetuned"), device="cpu").model_card_data.base_model is None
    offline = SentenceTransformer("someone/tiny-bert", cache_folder=str(cache), device="cpu", local_files_only=True)
    assert offline.model_card_data.base_model is None
    # the reference loads the card we wrote (its own base_model field comes from the metadata it reads back)
    assert Reference(str(tmp_path / "finetuned"), device="cpu").get_embedding_dimension() == 32


def test_save_to_hub_is_push_to_hub_with_the_organization_in_the_id(tiny_bert_path, monkeypatch):
    model = SentenceTransformer(str(tiny_bert_path), device="cpu")
    calls = []
    monkeypatch.setattr(model, "push_to_hub", lambda repo_id, **kwargs: calls.append((repo_id, kwargs)) or "url")
    with pytest.warns(FutureWarning, match="use push_to_hub"):
        assert model.save_to_hub("tiny", organization="me", token="t") == "url"
    assert calls[0][0] == "me/tiny" and calls[0][1]["token"] == "t"
    with warnings.catch_warnings(), pytest.raises(ValueError, match="names another owner"):
        warnings.simplefilter("ignore")
        model.save_to_hub("you/tiny", organization="me")
