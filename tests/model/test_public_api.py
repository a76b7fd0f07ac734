"""Public behaviour that sentence-transformers' own tests exercise, compared with sentence-transformers 6.2 in the
same run: encode options and the model's API (cards, Hub upload, config, saving)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference

from embedstack import SentenceTransformer
from embedstack.errors import ModelFormatError
from embedstack.modules import Pooling, Transformer

TEXTS = ["A man is eating food.", "A man is riding a horse.", "Someone plays the guitar.", ""]


@pytest.fixture(scope="module")
def pair(tiny_bert_path):
    """The tiny BERT as a model folder, loaded by both libraries."""
    return SentenceTransformer(str(tiny_bert_path), device="cpu"), Reference(str(tiny_bert_path), device="cpu")


# ----- encode ------------------------------------------------------------------------------------------------
def test_precision_none_is_float32(pair):
    ours, theirs = pair
    np.testing.assert_array_equal(ours.encode(TEXTS, precision=None), ours.encode(TEXTS))
    assert ours.encode(TEXTS, precision=None).dtype == theirs.encode(TEXTS, precision=None).dtype == np.float32


def test_zero_dimensional_string_array_is_one_input(pair):
    ours, theirs = pair
    single = np.array("hello there")
    assert ours.is_singular_input(single) is theirs.is_singular_input(single) is True
    assert ours.is_singular_input(np.array(["a", "b"])) is theirs.is_singular_input(np.array(["a", "b"])) is False
    # the reference then fails on the 0-d array ("Unsupported tensor dimensionality"); embedstack encodes its string
    np.testing.assert_allclose(ours.encode(single), theirs.encode("hello there"), atol=1e-6)
    assert ours.encode(single).shape == (32,)


def test_a_datasets_column_is_a_batch(pair):
    datasets = pytest.importorskip("datasets")
    ours, theirs = pair
    column = datasets.Dataset.from_dict({"text": TEXTS})["text"]
    assert type(column).__name__ == "Column"
    assert ours.is_singular_input(column) is theirs.is_singular_input(column) is False
    np.testing.assert_allclose(ours.encode(column), theirs.encode(column), atol=1e-6)


@pytest.mark.parametrize("method", ["encode_query", "encode_document"])
def test_encode_query_and_document_pass_inputs_by_keyword(pair, method, monkeypatch):
    calls = {}
    for name, model in zip(("ours", "theirs"), pair):
        seen = []
        monkeypatch.setattr(model, "encode", lambda *args, _seen=seen, **kwargs: _seen.append((args, kwargs)))
        getattr(model, method)(TEXTS)
        calls[name] = seen[0]
    (our_args, our_kwargs), (their_args, their_kwargs) = calls["ours"], calls["theirs"]
    assert our_args == their_args == ()
    assert our_kwargs["inputs"] is their_kwargs["inputs"] is TEXTS


# ----- the model's API --------------------------------------------------------------------------------------
def test_token_and_use_auth_token_together_are_refused(tiny_bert_path):
    for cls in (SentenceTransformer, Reference):
        with warnings.catch_warnings(), pytest.raises(ValueError, match="token"):
            warnings.simplefilter("ignore")
            cls(str(tiny_bert_path), token="a", use_auth_token="b", device="cpu")


def test_save_none_does_nothing_and_pickled_weights_can_be_asked_for(pair, tmp_path):
    ours, _ = pair
    assert ours.save(None) is None
    stack = SentenceTransformer(modules=[ours[0], ours[1], torch_dense()], device="cpu")
    stack.save(str(tmp_path / "m"), safe_serialization=False)
    assert (tmp_path / "m" / "2_Dense" / "pytorch_model.bin").is_file()
    reloaded = Reference(str(tmp_path / "m"), device="cpu")
    np.testing.assert_allclose(reloaded.encode(TEXTS), stack.encode(TEXTS), atol=1e-6)


def torch_dense():
    from embedstack.modules import Dense

    torch.manual_seed(0)
    return Dense(32, 8)


def test_model_card_data_fields_reach_the_card(pair, tmp_path):
    ours, theirs = pair
    reference_fields = {"language", "license", "model_name", "model_id", "train_datasets", "eval_datasets", "tags"}
    for field in reference_fields:
        assert hasattr(theirs.model_card_data, field) and hasattr(ours.model_card_data, field)
    ours.model_card_data.language = ["en", "de"]
    ours.model_card_data.license = "apache-2.0"
    ours.model_card_data.model_name = "Tiny test model"
    ours.model_card_data.tags = ["tiny"]
    ours.save(str(tmp_path / "m"))
    card = (tmp_path / "m" / "README.md").read_text()
    assert "language:\n- en\n- de" in card and "license: apache-2.0" in card and "- tiny\n" in card
    assert "# Tiny test model" in card


def test_an_emptied_card_text_is_regenerated(tiny_bert_path, tmp_path):
    model = SentenceTransformer(str(tiny_bert_path), device="cpu")
    model._model_card_text = ""
    model.save(str(tmp_path / "m"))
    assert "# SentenceTransformer" in (tmp_path / "m" / "README.md").read_text()


def test_config_property_and_setter(pair):
    for model in pair:
        original = model.config
        assert original.hidden_size == 32
        replacement = type(original).from_dict({**original.to_dict(), "hidden_dropout_prob": 0.5})
        model.config = replacement
        assert model.config is replacement and model[0].model.config is replacement
        model.config = original


def test_gradient_checkpointing_enable(tiny_bert_path):
    for cls in (SentenceTransformer, Reference):
        model = cls(str(tiny_bert_path), device="cpu")
        assert not model[0].model.is_gradient_checkpointing
        model.gradient_checkpointing_enable()
        assert model[0].model.is_gradient_checkpointing


def test_a_saved_similarity_name_that_does_not_exist_is_an_error(tiny_bert_path, tmp_path):
    SentenceTransformer(str(tiny_bert_path), device="cpu").save(str(tmp_path / "m"))
    file = tmp_path / "m" / "config_sentence_transformers.json"
    file.write_text(file.read_text().replace('"cosine"', '"cosin"'))
    with pytest.raises(
        ModelFormatError, match=r"config_sentence_transformers.json key 'similarity_fn_name' is 'cosin'"
    ):
        SentenceTransformer(str(tmp_path / "m"), device="cpu")


def test_modules_ignored_and_loading_are_logged(tiny_bert_path, caplog):
    with caplog.at_level(logging.INFO, logger="embedstack"):
        SentenceTransformer(str(tiny_bert_path), modules=[Pooling(32)], device="cpu")
    assert "the modules argument is ignored" in caplog.text
    assert f"from {tiny_bert_path}" in caplog.text


def test_old_transformer_arguments_warn(tiny_bert_path, caplog):
    with caplog.at_level(logging.WARNING, logger="embedstack"):
        module = Transformer(str(tiny_bert_path), model_args={"attn_implementation": "eager"})
    assert "deprecated" in caplog.text and "model_args" in caplog.text
    assert module.model.config._attn_implementation == "eager"


# ----- push_to_hub ------------------------------------------------------------------------------------------
class FakeHubApi:
    """Records what push_to_hub asks of the Hub; serves no network."""

    def __init__(self, has_readme: bool):
        self.has_readme = has_readme
        self.calls: list[tuple[str, dict]] = []
        self.uploaded: dict[str, bytes] = {}

    def install(self, monkeypatch):
        fake = self

        def method(name, result=None):
            def call(api, *args, **kwargs):
                fake.calls.append((name, {"token": api.token, "args": args, **kwargs}))
                return result(*args, **kwargs) if callable(result) else result

            return call

        monkeypatch.setattr(
            huggingface_hub.HfApi, "file_exists", method("file_exists", lambda *a, **k: self.has_readme)
        )
        monkeypatch.setattr(
            huggingface_hub.HfApi,
            "create_repo",
            method("create_repo", lambda repo_id, **k: SimpleNamespace(repo_id=repo_id)),
        )
        monkeypatch.setattr(huggingface_hub.HfApi, "create_branch", method("create_branch"))
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", method("upload_folder", self._upload))

    def _upload(self, *, folder_path, repo_id, **kwargs):
        root = Path(folder_path)
        self.uploaded = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        return SimpleNamespace(commit_url=f"https://hub/{repo_id}/commit/1", pr_url=f"https://hub/{repo_id}/pr/1")


@pytest.mark.parametrize("has_readme", [False, True])
def test_push_to_hub_uploads_the_saved_folder(tiny_bert_path, tmp_path, monkeypatch, has_readme):
    hub = FakeHubApi(has_readme)
    hub.install(monkeypatch)
    model = SentenceTransformer(str(tiny_bert_path), device="cpu")
    url = model.push_to_hub("me/tiny", token="secret", private=True, revision="v2")
    assert url == "https://hub/me/tiny/commit/1"
    model.save(str(tmp_path / "saved"), model_name="me/tiny")
    saved = {str(p.relative_to(tmp_path / "saved")) for p in (tmp_path / "saved").rglob("*") if p.is_file()}
    assert set(hub.uploaded) == (saved - {"README.md"} if has_readme else saved)
    names = [name for name, _ in hub.calls]
    assert names == ["file_exists", "create_repo", "create_branch", "upload_folder"]
    assert {kwargs["token"] for _, kwargs in hub.calls} == {"secret"}
    assert dict(hub.calls)["create_repo"]["private"] is True
    assert dict(hub.calls)["upload_folder"]["revision"] == "v2"
    if not has_readme:
        assert b'SentenceTransformer("me/tiny")' in hub.uploaded["README.md"]


def test_push_to_hub_as_a_pull_request_from_a_local_folder(tiny_bert_path, monkeypatch):
    hub = FakeHubApi(False)
    hub.install(monkeypatch)
    model = SentenceTransformer(str(tiny_bert_path), device="cpu")
    url = model.push_to_hub("me/tiny", local_model_path=str(tiny_bert_path), create_pr=True)
    assert url == "https://hub/me/tiny/pr/1"
    assert set(hub.uploaded) == {str(p.relative_to(tiny_bert_path)) for p in tiny_bert_path.rglob("*") if p.is_file()}
    assert dict(hub.calls)["create_repo"]["exist_ok"] is True
