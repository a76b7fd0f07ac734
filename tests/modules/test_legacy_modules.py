"""Every built-in and legacy module type: a stack written by either library loads in both with the same vectors.

Each stack is built with one library's classes (random weights), encoded, saved, then loaded by embedstack and by
sentence-transformers 6.2; every reader must reproduce the writer's vectors (max abs diff 1e-5).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import sentence_transformers
import sentence_transformers.sentence_transformer.modules as st_modules
import sentence_transformers.sentence_transformer.modules.tokenizer as st_tokenizers
import torch
from safetensors.torch import save_file

import embedstack
import embedstack.modules as our_modules
from helpers import copy_tokenizer, short_texts

TOLERANCE = 1e-5
OURS = SimpleNamespace(Model=embedstack.SentenceTransformer, m=our_modules, tok=our_modules)
THEIRS = SimpleNamespace(Model=sentence_transformers.SentenceTransformer, m=st_modules, tok=st_tokenizers)
LIBS = {"embedstack": OURS, "sentence-transformers": THEIRS}
TEXTS = short_texts() + ["The cat sat on the mat.", "the CAT, the cat; the Cat!"]


def vocabulary() -> list[str]:
    words = {word.strip(".,;!?\"'()").lower() for text in TEXTS for word in text.split()}
    return ["PADDING_TOKEN"] + sorted(w for w in words if w)[:300]


def word_embeddings(lib, dim=24):
    torch.manual_seed(0)
    vocab = vocabulary()
    tokenizer = lib.tok.WhitespaceTokenizer(vocab, do_lower_case=True)
    weights = torch.randn(len(vocab), dim)
    weights[0] = 0  # the padding row is zero, as in every GloVe-style model, so batching does not matter
    return lib.m.WordEmbeddings(tokenizer, weights, max_seq_length=12)


def stack_glove_lstm(lib, path):
    vocab = vocabulary()
    weights = {word: 1.0 + (i % 7) / 3 for i, word in enumerate(vocab) if i % 3}
    return [
        word_embeddings(lib),
        lib.m.WordWeights(vocab, weights, unknown_word_weight=0.5),
        lib.m.LSTM(24, 10, num_layers=2),
        lib.m.Pooling(20, pooling_mode="mean"),
        lib.m.LayerNorm(20),
        lib.m.Dropout(0.3),
    ]


def stack_glove_cnn(lib, path):
    return [
        word_embeddings(lib),
        lib.m.CNN(24, out_channels=6, kernel_sizes=[1, 3, 5]),
        lib.m.Pooling(18, pooling_mode="max"),
        lib.m.Dense(18, 8),
        lib.m.Normalize(),
    ]


def stack_bow(lib, path):
    vocab = vocabulary()[1:]
    return [lib.m.BoW(vocab, {w: 2.5 for w in vocab[::4]}, unknown_word_weight=0.75, cumulative_term_frequency=False)]


def stack_weighted_layers(lib, path):
    t = lib.m.Transformer(str(path), config_kwargs={"output_hidden_states": True})
    layers = lib.m.WeightedLayerPooling(32, num_hidden_layers=2, layer_start=1)
    with torch.no_grad():
        layers.layer_weights.copy_(torch.tensor([0.3, 1.7]))
    return [t, layers, lib.m.Pooling(32, pooling_mode="mean")]


def stack_static(lib, path):
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    return [lib.m.StaticEmbedding(Tokenizer.from_file(str(path / "tokenizer.json")), embedding_dim=16)]


def stack_router(lib, path):
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    static = lib.m.StaticEmbedding(Tokenizer.from_file(str(path / "tokenizer.json")), embedding_dim=32)
    t = lib.m.Transformer(str(path))
    router = lib.m.Router.for_query_document(query_modules=[static], document_modules=[t, lib.m.Pooling(32)])
    return [router, lib.m.Normalize()]


def stack_router_mappings(lib, path):
    torch.manual_seed(0)
    t = lib.m.Transformer(str(path))
    routes = {"plain": [t, lib.m.Pooling(32, pooling_mode="mean")], "cls": [t, lib.m.Pooling(32, pooling_mode="cls")]}
    return [
        lib.m.Router(
            routes, default_route="plain", route_mappings={("query", "text"): "cls", ("document", None): "plain"}
        )
    ]


STACKS = {
    "word_embeddings_word_weights_lstm_layer_norm_dropout": stack_glove_lstm,
    "word_embeddings_cnn_dense": stack_glove_cnn,
    "bow": stack_bow,
    "weighted_layer_pooling": stack_weighted_layers,
    "static_embedding": stack_static,
    "router_query_document": stack_router,
    "router_route_mappings": stack_router_mappings,
}


def encode_all(model) -> dict[str, np.ndarray]:
    return {
        "default": model.encode(TEXTS),
        "query": model.encode_query(TEXTS),
        "document": model.encode_document(TEXTS),
        "prompt": model.encode(TEXTS[:5], prompt="the cat: "),
    }


def assert_same(actual: dict, expected: dict, who: str) -> None:
    for key in expected:  # texts with no known word give NaN (an empty max pooling) in both libraries
        np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=TOLERANCE, equal_nan=True, err_msg=who)


@pytest.mark.parametrize("writer", sorted(LIBS))
@pytest.mark.parametrize("stack", sorted(STACKS))
def test_save_in_one_load_in_both(stack, writer, tiny_bert_path, tmp_path):
    original = LIBS[writer].Model(modules=STACKS[stack](LIBS[writer], tiny_bert_path), device="cpu")
    expected = encode_all(original)
    original.save(str(tmp_path / "model"))
    for reader_name, reader in LIBS.items():
        loaded = reader.Model(str(tmp_path / "model"), device="cpu")
        assert_same(encode_all(loaded), expected, f"{writer} -> {reader_name}")
        assert loaded.get_embedding_dimension() == original.get_embedding_dimension()
    resaved = OURS.Model(str(tmp_path / "model"), device="cpu")
    resaved.save(str(tmp_path / "resaved"))
    assert_same(encode_all(THEIRS.Model(str(tmp_path / "resaved"), device="cpu")), expected, "resaved by embedstack")


def test_router_routes_by_task_and_lists_routes_when_none_fits(tiny_bert_path):
    model = OURS.Model(modules=stack_router_mappings(OURS, tiny_bert_path), device="cpu")
    cls_model = OURS.Model(modules=[model[0].sub_modules["cls"][0], model[0].sub_modules["cls"][1]], device="cpu")
    np.testing.assert_allclose(model.encode_query(TEXTS[:4]), cls_model.encode(TEXTS[:4]), atol=1e-6)
    assert not np.allclose(model.encode(TEXTS[:4]), cls_model.encode(TEXTS[:4]))
    with pytest.raises(
        ValueError, match=r"No route found for task type 'summary'. Available routes: task='plain', task='cls'"
    ):
        model.encode(TEXTS[:2], task="summary")


def test_legacy_asym_folder_with_dict_inputs(tiny_bert_path, tmp_path):
    """An Asym folder as sentence-transformers 2.x wrote it: config.json, old type names, {"query": text} inputs."""
    model = OURS.Model(modules=stack_router(OURS, tiny_bert_path), device="cpu")
    expected_query, expected_document = model.encode_query(TEXTS), model.encode_document(TEXTS)
    model.save(str(tmp_path / "m"))
    folder = tmp_path / "m"
    entries = json.loads((folder / "modules.json").read_text())
    router_folder = folder / entries[0]["path"]  # the model root, as sentence-transformers 6.2 saves a Router
    config = json.loads((router_folder / "router_config.json").read_text())
    legacy_types = {
        key: "sentence_transformers.models." + value.rsplit(".", 1)[-1] for key, value in config["types"].items()
    }
    (router_folder / "router_config.json").unlink()
    (router_folder / "config.json").write_text(
        json.dumps({"types": legacy_types, "structure": config["structure"], "parameters": {"allow_empty_key": False}})
    )
    entries[0]["type"] = "sentence_transformers.models.Asym"
    (folder / "modules.json").write_text(json.dumps(entries))
    for reader in LIBS.values():
        loaded = reader.Model(str(folder), device="cpu")
        queries = loaded.encode([{"query": text} for text in TEXTS])
        documents = loaded.encode([{"document": text} for text in TEXTS])
        assert np.abs(queries - expected_query).max() <= TOLERANCE
        assert np.abs(documents - expected_document).max() <= TOLERANCE


def test_model2vec_folder(tiny_bert_path, tmp_path):
    """A model2vec folder (``embeddings`` + vocabulary ``mapping`` + per-token ``weights``) as a StaticEmbedding."""
    folder = tmp_path / "potion"
    folder.mkdir()
    copy_tokenizer(folder)
    vocab_size = 30522
    generator = torch.Generator().manual_seed(0)
    save_file(
        {
            "embeddings": torch.randn(1000, 16, generator=generator),
            "mapping": torch.randint(0, 1000, (vocab_size,), generator=generator),
            "weights": torch.rand(vocab_size, generator=generator),
        },
        folder / "model.safetensors",
    )
    (folder / "config.json").write_text(json.dumps({"model_type": "model2vec", "normalize": False}))
    ours = OURS.Model(modules=[OURS.m.StaticEmbedding.from_model2vec(str(folder))], device="cpu")
    theirs = THEIRS.Model(modules=[THEIRS.m.StaticEmbedding.load(str(folder))], device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), theirs.encode(TEXTS), atol=TOLERANCE)
    ours.save(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        THEIRS.Model(str(tmp_path / "saved")).encode(TEXTS), theirs.encode(TEXTS), atol=TOLERANCE
    )
