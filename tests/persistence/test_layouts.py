"""Loading every folder layout sentence-transformers has written, and refusing bad ones clearly."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer as Reference

from embedstack import SentenceTransformer
from embedstack.errors import ModelFormatError, ModelNotFoundError, UnknownModuleTypeError, UntrustedCodeError
from helpers import short_texts, tiny_bert


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def legacy_folder(tmp_path: Path, *, pooling: dict, types: str = "sentence_transformers.models.{}") -> Path:
    """A folder as sentence-transformers 2.x wrote it: legacy type names, legacy keys, no Normalize folder."""
    folder = tiny_bert(tmp_path / "legacy")
    write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": types.format("Transformer")},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": types.format("Pooling")},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": types.format("Normalize")},
        ],
    )
    write_json(folder / "sentence_bert_config.json", {"max_seq_length": 24, "do_lower_case": False})
    write_json(folder / "config_sentence_transformers.json", {"__version__": {"sentence_transformers": "2.0.0"}})
    write_json(folder / "1_Pooling" / "config.json", {"word_embedding_dimension": 32, **pooling})
    return folder


def assert_same_vectors(folder: Path, **kwargs) -> SentenceTransformer:
    ours = SentenceTransformer(str(folder), device="cpu", **kwargs)
    theirs = Reference(str(folder), device="cpu", **kwargs)
    texts = short_texts()
    assert np.abs(ours.encode(texts) - theirs.encode(texts)).max() <= 1e-5
    assert ours.max_seq_length == theirs.max_seq_length
    assert repr(ours) == repr(theirs)
    return ours


@pytest.mark.parametrize("types", ["sentence_transformers.models.{}", "sentence_transformers.models.{0}.{0}"])
def test_legacy_type_names_keys_and_missing_normalize_folder(tmp_path, types):
    pooling = {"pooling_mode_cls_token": True, "pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False}
    folder = legacy_folder(tmp_path, pooling=pooling, types=types)
    assert not (folder / "2_Normalize").exists()
    ours = assert_same_vectors(folder)
    assert ours[1].modes == ("cls", "max")
    assert ours.max_seq_length == 24  # sentence_bert_config.json beats the tokenizer's own 512


def test_old_tokenizer_file_set_without_tokenizer_json(tmp_path):
    folder = legacy_folder(tmp_path, pooling={"pooling_mode_mean_tokens": True})
    (folder / "tokenizer.json").unlink()
    assert (folder / "vocab.txt").exists()
    assert_same_vectors(folder)


def test_legacy_transformer_config_name_and_lowercase(tmp_path):
    folder = legacy_folder(tmp_path, pooling={"pooling_mode_mean_tokens": True})
    (folder / "sentence_bert_config.json").rename(folder / "sentence_roberta_config.json")
    write_json(folder / "sentence_roberta_config.json", {"max_seq_length": 20, "do_lower_case": True})
    ours = assert_same_vectors(folder)
    assert ours.max_seq_length == 20
    assert np.allclose(ours.encode("HELLO World"), ours.encode("hello world"), atol=1e-6)


def test_current_layout_with_kwargs_list_survives_save(tmp_path, tiny_bert_path):
    from embedstack.modules import Pooling, Transformer

    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")
    model.module_kwargs["1"] = ["task"]
    model.save(str(tmp_path / "m"))
    entries = json.loads((tmp_path / "m" / "modules.json").read_text())
    assert entries[1]["kwargs"] == ["task"] and "kwargs" not in entries[0]
    again = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    again.save(str(tmp_path / "m2"))
    assert json.loads((tmp_path / "m2" / "modules.json").read_text())[1]["kwargs"] == ["task"]


def test_other_model_type_is_converted_to_default_modules(tmp_path, tiny_bert_path):
    folder = tmp_path / "sparse"
    shutil.copytree(tiny_bert_path, folder)
    write_json(
        folder / "modules.json",
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}],
    )
    write_json(
        folder / "config_sentence_transformers.json", {"model_type": "SparseEncoder", "prompts": {"query": "q: "}}
    )
    ours = assert_same_vectors(folder)
    assert ours.prompts == {"query": "", "document": ""}
    assert ours[1].pooling_mode == "mean"


def test_hub_id_resolves_through_an_offline_cache(tmp_path, tiny_bert_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--sentence-transformers--tiny-bert"
    shutil.copytree(tiny_bert_path, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = SentenceTransformer("tiny-bert", cache_folder=str(tmp_path / "cache"), device="cpu")
    direct = SentenceTransformer(str(tiny_bert_path), device="cpu")
    assert np.array_equal(model.encode(["hub"]), direct.encode(["hub"]))
    with pytest.raises(ModelNotFoundError, match="sentence-transformers/not-there"):
        SentenceTransformer("not-there", cache_folder=str(tmp_path / "cache"))


def test_paths_that_are_not_models(tmp_path):
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(NotADirectoryError):
        SentenceTransformer(str(file))
    with pytest.raises(FileNotFoundError):
        SentenceTransformer("a/b/c")


@pytest.mark.parametrize("bad_path", ["../outside", "/etc", "1_Pooling/../../x", "a\x00b", "C:\\Windows"])
def test_module_paths_outside_the_folder_are_refused(tmp_path, tiny_bert_path, bad_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert_path, folder)
    write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": bad_path, "type": "sentence_transformers.models.Pooling"},
        ],
    )
    with pytest.raises(ModelFormatError, match="outside the model folder"):
        SentenceTransformer(str(folder))


def test_symlink_escaping_the_folder_is_refused(tmp_path, tiny_bert_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert_path, folder)
    outside = tmp_path / "outside"
    write_json(outside / "config.json", {"embedding_dimension": 32})
    os.symlink(outside, folder / "1_Pooling")
    write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ],
    )
    with pytest.raises(ModelFormatError, match="outside the model folder"):
        SentenceTransformer(str(folder))


def test_bad_files_name_the_file(tmp_path, tiny_bert_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert_path, folder)
    (folder / "modules.json").write_text('[{"idx": 0, "path": "", "type": ')
    with pytest.raises(ModelFormatError, match=r"modules\.json is not valid JSON"):
        SentenceTransformer(str(folder))
    write_json(folder / "modules.json", [{"idx": 0, "path": "", "type": "sentence_transformers.models.Transfomer"}])
    with pytest.raises(UnknownModuleTypeError, match="Did you mean: sentence_transformers.models.Transformer"):
        SentenceTransformer(str(folder))
    write_json(folder / "modules.json", [{"idx": 0, "path": "", "type": "evil.Payload"}])
    (folder / "evil.py").write_text("raise SystemExit('this must never run')\n")
    with pytest.raises(UntrustedCodeError, match=r"class Payload in .*evil\.py.*trust_remote_code=True"):
        SentenceTransformer(str(folder))


def test_unmet_requirements_raise_import_error(tmp_path, tiny_bert_path):
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert_path, folder)
    write_json(folder / "config_sentence_transformers.json", {"requirements": {"torch": ">=99"}})
    with pytest.raises(ImportError, match="torch>=99"):
        SentenceTransformer(str(folder))
