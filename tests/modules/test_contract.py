"""One contract test over every registered module: config round trip, save/load identity, stable repr."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer

from embedstack.modules import (
    BUILTIN_MODULE_NAMES,
    CNN,
    LSTM,
    BoW,
    CLIPModel,
    Dense,
    Dropout,
    InputModule,
    LayerNorm,
    Normalize,
    Pooling,
    Router,
    StaticEmbedding,
    Transformer,
    WeightedLayerPooling,
    WhitespaceTokenizer,
    WordEmbeddings,
    WordWeights,
)
from embedstack.registry import registered_modules, resolve_module_class, type_name_for

VOCAB = ["PADDING_TOKEN", "a", "first", "text", "and", "second", "longer"]


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    from multimodal_backbones import tiny_clip

    return tiny_clip(tmp_path_factory.mktemp("clip"))


def _tokenizer(tiny_bert_path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny_bert_path / "tokenizer.json"))


# One builder per module, so that each test builds only the module it checks (building all of them, Transformer and
# CLIP loads included, for each of the ~30 tests was most of this file's time).
BUILDERS = {
    "Transformer": lambda bert, clip: Transformer(str(bert), max_seq_length=24),
    "Pooling": lambda bert, clip: Pooling(32, pooling_mode=["mean", "max"], include_prompt=False),
    "Dense": lambda bert, clip: Dense(32, 8, activation_function=torch.nn.GELU()),
    "Normalize": lambda bert, clip: Normalize(),
    "Router": lambda bert, clip: Router.for_query_document(
        [StaticEmbedding(_tokenizer(bert), embedding_dim=32)], [BoW(VOCAB)]
    ),
    "StaticEmbedding": lambda bert, clip: StaticEmbedding(_tokenizer(bert), embedding_dim=8),
    "WordEmbeddings": lambda bert, clip: WordEmbeddings(
        WhitespaceTokenizer(VOCAB, stop_words=["and"]), torch.randn(7, 32)
    ),
    "WordWeights": lambda bert, clip: WordWeights(VOCAB, {"text": 2.0, "first": 0.5}, unknown_word_weight=0.1),
    "BoW": lambda bert, clip: BoW(VOCAB, {"text": 3.0}, cumulative_term_frequency=False),
    "CNN": lambda bert, clip: CNN(32, out_channels=4, kernel_sizes=[1, 3]),
    "LSTM": lambda bert, clip: LSTM(32, 6, num_layers=1),
    "LayerNorm": lambda bert, clip: LayerNorm(32),
    "Dropout": lambda bert, clip: Dropout(0.25),
    "WeightedLayerPooling": lambda bert, clip: WeightedLayerPooling(32, num_hidden_layers=3, layer_start=1),
    "CLIPModel": lambda bert, clip: CLIPModel(str(clip)),
    "MLMTransformer": lambda bert, clip: _mlm_transformer(bert),
}


def _mlm_transformer(tiny_bert_path):
    from embedstack.modules.legacy.mlm_transformer import MLMTransformer

    with pytest.warns(FutureWarning, match="MLMTransformer is deprecated"):
        return MLMTransformer(str(tiny_bert_path), max_seq_length=24)


def example(name: str, tiny_bert_path, clip_path):
    """The module ``name``: built here when it needs a backbone folder, else from the ``example`` its registration
    declares (so a new built-in is covered by its own file)."""
    torch.manual_seed(0)
    if name in BUILDERS:
        return BUILDERS[name](tiny_bert_path, clip_path)
    spec = registered_modules(builtin_only=True)[name]
    assert spec.example is not None, f"register {name} with an example= so that the contract test can build it"
    return spec.example()


INPUT_MODULES = {"Transformer", "MLMTransformer", "Router", "StaticEmbedding", "WordEmbeddings", "BoW", "CLIPModel"}


# Which features a non-input module reads; a module registered later gets both kinds.
TOKEN_LEVEL = {"Pooling", "CNN", "LSTM", "WordWeights", "WeightedLayerPooling"}
SENTENCE_LEVEL = {"Dense", "Normalize", "LayerNorm", "Dropout"}


def sample_features(name: str, module) -> dict:
    torch.manual_seed(0)
    if name in INPUT_MODULES or isinstance(module, InputModule):
        return module.preprocess(["a first text", "and a second, longer text"])
    features: dict = {}
    if name not in SENTENCE_LEVEL:
        features |= {
            "token_embeddings": torch.randn(2, 5, 32),
            "attention_mask": torch.tensor([[1] * 5, [1, 1, 1, 0, 0]]),
            "input_ids": torch.tensor([[1, 2, 3, 4, 5], [6, 1, 2, 0, 0]]),
            "sentence_lengths": torch.tensor([5, 3]),
            "all_layer_embeddings": tuple(torch.randn(2, 5, 32) for _ in range(4)),
        }
    if name not in TOKEN_LEVEL:
        features["sentence_embedding"] = torch.randn(2, 32)
    return features


def output_of(features: dict) -> torch.Tensor:
    return features["sentence_embedding"] if "sentence_embedding" in features else features["token_embeddings"]


def test_every_builtin_is_covered():
    registered = registered_modules(builtin_only=True)
    assert set(BUILTIN_MODULE_NAMES) == set(registered)
    assert {name for name, spec in registered.items() if name not in BUILDERS and spec.example is None} == set()


@pytest.mark.parametrize("name", BUILTIN_MODULE_NAMES)
def test_module_contract(name, tiny_bert_path, clip_path, tmp_path):
    module = example(name, tiny_bert_path, clip_path).eval()
    cls = type(module)
    module.save(str(tmp_path), safe_serialization=True)
    if name != "Router":  # the Router's file also holds its routes ({"types", "structure", "parameters"})
        written = json.loads(json.dumps(module.get_config_dict()))  # tuples are saved as JSON lists
        assert cls.load_config(str(tmp_path)) == written
    loaded = cls.load(str(tmp_path)).eval()
    assert loaded.get_config_dict() == module.get_config_dict()
    assert repr(loaded) == repr(module)
    assert getattr(loaded, "max_seq_length", None) == getattr(module, "max_seq_length", None)
    if hasattr(type(module), "get_embedding_dimension"):
        assert loaded.get_embedding_dimension() == module.get_embedding_dimension()
    type_name = type_name_for(module)
    assert type_name.startswith(("sentence_transformers.", "embedstack.modules."))
    assert resolve_module_class(type_name, model_path=tmp_path, trust_remote_code=False, where="test") is cls
    with torch.no_grad():
        expected = output_of(module(sample_features(name, module)))
        actual = output_of(loaded(sample_features(name, loaded)))
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", BUILTIN_MODULE_NAMES)
def test_module_accepts_future_keywords(name, tiny_bert_path, clip_path, tmp_path):
    """The seed asks modules to take **kwargs on forward, save and preprocess so that new options do not break them."""
    module = example(name, tiny_bert_path, clip_path).eval()
    module.save(str(tmp_path), safe_serialization=True, some_future_option=1)
    features = sample_features(name, module)
    if name in INPUT_MODULES:
        features = module.preprocess(["a text"], prompt=None, some_future_option=1)
    with torch.no_grad():
        module(features, some_future_option=1)


def test_dense_writing_another_feature_does_not_claim_the_width(tiny_bert_path):
    """Found by the fuzz test: a Dense whose output goes to another feature must not report the model's width."""
    from embedstack import SentenceTransformer

    side = Dense(32, 8, module_output_name="projected")
    assert side.get_embedding_dimension() is None
    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32), side], device="cpu")
    assert model.get_embedding_dimension() == model.encode(["a text"]).shape[1] == 32
