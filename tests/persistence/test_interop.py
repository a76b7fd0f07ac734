"""Stacks built in each library save in one and load in the other with the same vectors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import sentence_transformers
import sentence_transformers.sentence_transformer.modules as st_modules

import embedstack
import embedstack.modules as our_modules
from helpers import short_texts

TOLERANCE = 1e-5
OURS = SimpleNamespace(Model=embedstack.SentenceTransformer, m=our_modules)
THEIRS = SimpleNamespace(Model=sentence_transformers.SentenceTransformer, m=st_modules)
LIBS = {"embedstack": OURS, "sentence-transformers": THEIRS}


def stack_pooling_modes(lib, path):
    t = lib.m.Transformer(str(path))
    return [t, lib.m.Pooling(t.get_embedding_dimension(), pooling_mode=["cls", "mean", "max"])], {}


def stack_sqrt_weighted(lib, path):
    t = lib.m.Transformer(str(path))
    return [t, lib.m.Pooling(32, pooling_mode=["mean_sqrt_len_tokens", "weightedmean", "lasttoken"])], {}


def stack_dense_normalize(lib, path):
    t = lib.m.Transformer(str(path))
    return [t, lib.m.Pooling(32, pooling_mode="mean"), lib.m.Dense(32, 16), lib.m.Normalize()], {}


def stack_prompts(lib, path):
    t = lib.m.Transformer(str(path))
    modules = [t, lib.m.Pooling(32, pooling_mode="mean", include_prompt=False)]
    settings = dict(
        prompts={"query": "query: ", "document": "passage: ", "short": "s: "},
        default_prompt_name="query",
        similarity_fn_name="dot",
        truncate_dim=20,
    )
    return modules, settings


def stack_lasttoken_causal(lib, path):
    t = lib.m.Transformer(str(path))
    return [t, lib.m.Pooling(t.get_embedding_dimension(), pooling_mode="lasttoken")], {
        "similarity_fn_name": "euclidean"
    }


STACKS = {
    "pooling_cls_mean_max": (stack_pooling_modes, "tiny_bert_path"),
    "pooling_sqrt_weighted_last": (stack_sqrt_weighted, "tiny_bert_path"),
    "dense_normalize": (stack_dense_normalize, "tiny_bert_path"),
    "prompts_dot_truncate": (stack_prompts, "tiny_bert_path"),
    "lasttoken_causal_lm": (stack_lasttoken_causal, "tiny_llama_path"),
}


def encode_all(model) -> dict[str, np.ndarray]:
    texts = short_texts()
    return {
        "default": model.encode(texts),
        "query": model.encode_query(texts),
        "document": model.encode_document(texts),
        "no_prompt": model.encode(texts, prompt=""),
    }


def assert_same(a: dict, b: dict) -> None:
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert np.abs(a[key] - b[key]).max() <= TOLERANCE, key


@pytest.mark.parametrize("writer", sorted(LIBS))
@pytest.mark.parametrize("stack", sorted(STACKS))
def test_save_in_one_load_in_both(stack, writer, request, tmp_path):
    build, backbone = STACKS[stack]
    modules, settings = build(LIBS[writer], request.getfixturevalue(backbone))
    original = LIBS[writer].Model(modules=modules, device="cpu", **settings)
    expected = encode_all(original)
    original.save(str(tmp_path / "model"))
    for reader_name, reader in LIBS.items():
        loaded = reader.Model(str(tmp_path / "model"), device="cpu")
        assert_same(encode_all(loaded), expected)
        assert loaded.similarity_fn_name == original.similarity_fn_name, reader_name
        assert loaded.truncate_dim == original.truncate_dim, reader_name
        assert loaded.default_prompt_name == original.default_prompt_name, reader_name
        assert loaded.prompts == original.prompts, reader_name
        assert loaded.get_embedding_dimension() == original.get_embedding_dimension(), reader_name


def test_plain_hf_folders_get_default_pooling(tiny_bert_path, tiny_llama_path):
    for path, mode in ((tiny_bert_path, "mean"), (tiny_llama_path, "lasttoken")):
        ours = OURS.Model(str(path), device="cpu")
        theirs = THEIRS.Model(str(path), device="cpu")
        assert ours[1].pooling_mode == theirs[1].pooling_mode == mode
        assert ours.max_seq_length == theirs.max_seq_length
        assert_same(encode_all(ours), encode_all(theirs))


def test_resave_of_a_reference_folder_loads_in_the_reference(tiny_bert_path, tmp_path):
    built = THEIRS.Model(modules=stack_dense_normalize(THEIRS, tiny_bert_path)[0], device="cpu")
    built.save(str(tmp_path / "st"))
    ours = OURS.Model(str(tmp_path / "st"), device="cpu")
    ours.save(str(tmp_path / "ours"))
    again = THEIRS.Model(str(tmp_path / "ours"), device="cpu")
    assert_same(encode_all(again), encode_all(built))
    for name in ("modules.json", "2_Dense/config.json", "1_Pooling/config.json", "sentence_bert_config.json"):
        assert json.loads((tmp_path / "ours" / name).read_text()) == json.loads((tmp_path / "st" / name).read_text())


def test_legacy_layout_loads_in_both(tiny_bert_path, tmp_path):
    modules, _ = stack_dense_normalize(OURS, tiny_bert_path)
    model = OURS.Model(modules=modules, device="cpu")
    model.max_seq_length = 64
    model.save(str(tmp_path / "legacy"), legacy_layout=True)
    entries = json.loads((tmp_path / "legacy" / "modules.json").read_text())
    assert [e["type"] for e in entries] == [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Dense",
        "sentence_transformers.models.Normalize",
    ]
    pooling = json.loads((tmp_path / "legacy" / "1_Pooling" / "config.json").read_text())
    assert pooling["word_embedding_dimension"] == 32 and pooling["pooling_mode_mean_tokens"] is True
    assert "pooling_mode" not in pooling
    assert json.loads((tmp_path / "legacy" / "sentence_bert_config.json").read_text()) == {
        "max_seq_length": 64,
        "do_lower_case": False,
    }
    assert not (tmp_path / "legacy" / "3_Normalize" / "config.json").exists()
    expected = encode_all(model)
    for reader in LIBS.values():
        loaded = reader.Model(str(tmp_path / "legacy"), device="cpu")
        assert loaded.max_seq_length == 64
        assert_same(encode_all(loaded), expected)
