"""Custom module code in a model folder: the trust gate, relative imports, Hub-hosted code, re-saving, kwargs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from embedstack import SentenceTransformer
from embedstack.errors import UnknownModuleTypeError, UntrustedCodeError
from embedstack.modules import Pooling, Transformer
from helpers import add_to_cache

CODE_DIR = Path(__file__).parents[1] / "remote_code"
CODE_FILES = ("scaled_pooling.py", "scaling.py")
TEXTS = ["a custom module", "with code that travels with the model", "and a relative import"]


def write_custom_model(folder: Path, tiny_bert_path: Path, *, code_in: str = "root", kwargs=("task",)) -> Path:
    """Transformer + ScaledMeanPooling (remote code); ``code_in`` is "root", "module" or "nowhere"."""
    SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu").save(str(folder))
    shutil.rmtree(folder / "1_Pooling")
    module_folder = folder / "1_ScaledMeanPooling"
    module_folder.mkdir()
    (module_folder / "config.json").write_text(json.dumps({"dimension": 32, "scale": 3.0}))
    save_file({"bias": torch.linspace(0, 1, 32)}, module_folder / "model.safetensors")
    entries = json.loads((folder / "modules.json").read_text())
    entries[1].update(path="1_ScaledMeanPooling", type="scaled_pooling.ScaledMeanPooling", kwargs=list(kwargs))
    (folder / "modules.json").write_text(json.dumps(entries))
    for name in CODE_FILES:
        if code_in != "nowhere":
            shutil.copy(CODE_DIR / name, (folder if code_in == "root" else module_folder) / name)
    return folder


def expected_vectors(model: SentenceTransformer, texts: list[str], scale: float) -> np.ndarray:
    features = model[0].preprocess(texts)
    with torch.no_grad():
        tokens = model[0](features)["token_embeddings"]
    mask = features["attention_mask"].unsqueeze(-1).float()
    mean = (tokens * mask).sum(1) / mask.sum(1)
    return (mean * scale + torch.linspace(0, 1, 32)).numpy()


def test_loading_custom_code_needs_trust_and_says_what_would_run(tmp_path, tiny_bert_path):
    folder = write_custom_model(tmp_path / "m", tiny_bert_path)
    with pytest.raises(UntrustedCodeError) as info:
        SentenceTransformer(str(folder), device="cpu")
    message = str(info.value)
    assert "class ScaledMeanPooling" in message and str(folder / "scaled_pooling.py") in message
    assert "modules.json entry 1" in message and "trust_remote_code=True" in message


def test_custom_code_with_relative_import_loads_and_matches_reference(tmp_path, tiny_bert_path):
    from sentence_transformers import SentenceTransformer as Reference

    folder = write_custom_model(tmp_path / "m", tiny_bert_path)
    model = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    ours = model.encode(TEXTS)
    np.testing.assert_allclose(ours, expected_vectors(model, TEXTS, 3.0), atol=1e-5)
    reference = Reference(str(folder), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(ours, reference.encode(TEXTS), atol=1e-5)
    np.testing.assert_allclose(model.encode(TEXTS, task="negate"), reference.encode(TEXTS, task="negate"), atol=1e-5)


def test_code_saved_next_to_the_module_only_also_loads(tmp_path, tiny_bert_path):
    folder = write_custom_model(tmp_path / "m", tiny_bert_path, code_in="module")
    model = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(model.encode(TEXTS), expected_vectors(model, TEXTS, 3.0), atol=1e-5)


def test_missing_code_file_is_a_clear_error(tmp_path, tiny_bert_path):
    folder = write_custom_model(tmp_path / "m", tiny_bert_path, code_in="nowhere")
    with pytest.raises(UnknownModuleTypeError, match=r"put scaled_pooling\.py in the model folder"):
        SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)


def test_resaving_a_remote_code_model_carries_its_code_and_kwargs(tmp_path, tiny_bert_path):
    from sentence_transformers import SentenceTransformer as Reference

    folder = write_custom_model(tmp_path / "m", tiny_bert_path, code_in="module")
    model = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    expected = model.encode(TEXTS, task="negate")
    for _round_trip in range(2):  # save, load, save again (over the folder it was loaded from)
        model.save(str(tmp_path / "saved"))
        saved = tmp_path / "saved"
        for name in CODE_FILES:
            assert (saved / name).is_file() and (saved / "1_ScaledMeanPooling" / name).is_file()
        entry = json.loads((saved / "modules.json").read_text())[1]
        assert entry["type"] == "scaled_pooling.ScaledMeanPooling" and entry["kwargs"] == ["task"]
        model = SentenceTransformer(str(saved), device="cpu", trust_remote_code=True)
        np.testing.assert_allclose(model.encode(TEXTS, task="negate"), expected, atol=1e-6)
    reference = Reference(str(saved), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(reference.encode(TEXTS, task="negate"), expected, atol=1e-5)


def test_unknown_encode_kwargs_list_the_accepted_ones(tmp_path, tiny_bert_path):
    folder = write_custom_model(tmp_path / "m", tiny_bert_path, kwargs=("task", "strength"))
    model = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    assert model.get_model_kwargs() == ["strength", "task"]
    with pytest.raises(ValueError, match=r"\['colour'\].*arguments are: \['strength', 'task'\]"):
        model.encode(TEXTS, colour="red")
    model.encode(TEXTS, strength=1)  # routed to the module's forward, which takes **kwargs


def test_code_from_another_hub_repository(tmp_path, tiny_bert_path, monkeypatch):
    """``{repo_id}--{module}.{Class}`` imports the class from another repository, here through an offline cache."""
    cache = tmp_path / "hub"
    implementation = tmp_path / "implementation"
    implementation.mkdir()
    for name in CODE_FILES:
        shutil.copy(CODE_DIR / name, implementation / name)
    add_to_cache(cache, "my-user/my-model-implementation", implementation)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    folder = write_custom_model(tmp_path / "m", tiny_bert_path, code_in="nowhere")
    entries = json.loads((folder / "modules.json").read_text())
    entries[1]["type"] = "my-user/my-model-implementation--scaled_pooling.ScaledMeanPooling"
    (folder / "modules.json").write_text(json.dumps(entries))

    with pytest.raises(UntrustedCodeError, match="scaled_pooling.py of the Hub repository my-user/my-model-impl"):
        SentenceTransformer(str(folder), device="cpu")
    model = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(model.encode(TEXTS), expected_vectors(model, TEXTS, 3.0), atol=1e-5)
    model.save(str(tmp_path / "saved"))
    assert json.loads((tmp_path / "saved" / "modules.json").read_text())[1]["type"] == entries[1]["type"]
    assert not (tmp_path / "saved" / "scaled_pooling.py").exists()  # the code stays in its own repository
    again = SentenceTransformer(str(tmp_path / "saved"), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(again.encode(TEXTS), model.encode(TEXTS), atol=1e-6)


def test_old_style_custom_transformer_is_built_like_the_reference(tmp_path, tiny_bert_path):
    """Old custom Transformer modules (one-argument load, __init__ with model_args/tokenizer_args) are built from
    sentence_bert_config.json through __init__, as sentence-transformers does."""
    from sentence_transformers import SentenceTransformer as Reference

    folder = tmp_path / "m"
    SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu").save(str(folder))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 16, "do_lower_case": False}))
    shutil.copy(CODE_DIR / "old_transformer.py", folder / "old_transformer.py")
    entries = json.loads((folder / "modules.json").read_text())
    entries[0]["type"] = "old_transformer.OldTransformer"
    (folder / "modules.json").write_text(json.dumps(entries))
    ours = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True)
    assert type(ours[0]).__name__ == "OldTransformer" and ours[0].max_seq_length == 16
    reference = Reference(str(folder), device="cpu", trust_remote_code=True)
    texts = TEXTS + ["a text long enough to be cut at sixteen tokens by the old module's own tokenizer call"]
    np.testing.assert_allclose(ours.encode(texts), reference.encode(texts), atol=1e-5)
    plain = SentenceTransformer(
        modules=[Transformer(str(tiny_bert_path), max_seq_length=16), Pooling(32)], device="cpu"
    )
    np.testing.assert_allclose(ours.encode(texts), 0.5 * plain.encode(texts), atol=1e-5)
