"""One contract test over every registered module: config round trip, save/load identity, stable repr."""

from __future__ import annotations

import pytest
import torch

from embedstack.modules import BUILTIN_MODULE_NAMES, Dense, Normalize, Pooling, Transformer
from embedstack.registry import builtin_modules, type_name_for


def examples(tiny_bert_path) -> dict:
    return {
        "Transformer": Transformer(str(tiny_bert_path), max_seq_length=24),
        "Pooling": Pooling(32, pooling_mode=["mean", "max"], include_prompt=False),
        "Dense": Dense(32, 8, activation_function=torch.nn.GELU()),
        "Normalize": Normalize(),
    }


def sample_features(name: str, module) -> dict:
    torch.manual_seed(0)
    if name == "Transformer":
        return module.preprocess(["a first text", "and a second, longer text"])
    if name == "Pooling":
        return {"token_embeddings": torch.randn(2, 5, 32), "attention_mask": torch.tensor([[1] * 5, [1, 1, 1, 0, 0]])}
    return {"sentence_embedding": torch.randn(2, 32)}


def test_every_builtin_is_covered(tiny_bert_path):
    assert set(examples(tiny_bert_path)) == set(BUILTIN_MODULE_NAMES) == set(builtin_modules())


@pytest.mark.parametrize("name", BUILTIN_MODULE_NAMES)
def test_module_contract(name, tiny_bert_path, tmp_path):
    module = examples(tiny_bert_path)[name].eval()
    cls = type(module)
    module.save(str(tmp_path), safe_serialization=True)
    assert cls.load_config(str(tmp_path)) == module.get_config_dict()
    loaded = cls.load(str(tmp_path)).eval()
    assert loaded.get_config_dict() == module.get_config_dict()
    assert repr(loaded) == repr(module)
    assert getattr(loaded, "max_seq_length", None) == getattr(module, "max_seq_length", None)
    assert type_name_for(module).startswith("sentence_transformers.")
    with torch.no_grad():
        expected = module(sample_features(name, module))
        actual = loaded(sample_features(name, loaded))
    key = "token_embeddings" if name == "Transformer" else "sentence_embedding"
    torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
