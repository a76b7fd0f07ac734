"""The seed document's code samples, with only the import lines changed, run offline through a Hub cache."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import add_to_cache, copy_tokenizer

SEED_DIR = Path(__file__).parents[1] / "seed_samples"
# The repr the seed prints for its DecayMeanPooling model.
SEED_REPR = """SentenceTransformer(
  (0): Transformer({'transformer_task': 'feature-extraction', 'modality_config': {'text': {'method': 'forward', 'method_output_name': 'last_hidden_state'}}, 'module_output_name': 'token_embeddings', 'architecture': 'BertModel'})
  (1): DecayMeanPooling({'dimension': 768, 'decay': 0.99})
  (2): Normalize({'module_input_name': 'sentence_embedding', 'module_output_name': 'sentence_embedding'})
)"""  # noqa: E501


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, minilm_path):
    """A Hub cache holding all-MiniLM-L6-v2 and a small bert-base-uncased stand-in (768 wide, random)."""
    import torch
    from transformers import BertConfig, BertModel

    cache = tmp_path_factory.mktemp("hub")
    add_to_cache(cache, "sentence-transformers/all-MiniLM-L6-v2", minilm_path)
    bert = tmp_path_factory.mktemp("bert-base")
    torch.manual_seed(0)
    config = BertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=12, intermediate_size=128)
    BertModel(config).save_pretrained(bert)
    copy_tokenizer(bert)
    add_to_cache(cache, "google-bert/bert-base-uncased", bert)
    return cache


@pytest.fixture
def offline_hub(hub_cache, monkeypatch):
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(hub_cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(hub_cache))
    return hub_cache


def test_modular_architecture_and_saving(offline_hub, tmp_path):
    from embedstack import SentenceTransformer
    from embedstack.modules import Normalize, Pooling, Transformer

    transformer = Transformer("sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    normalize = Normalize()

    model = SentenceTransformer(modules=[transformer, pooling, normalize])
    model.save_pretrained(str(tmp_path / "local-all-MiniLM-L6-v2"))

    saved = tmp_path / "local-all-MiniLM-L6-v2"
    assert {p.name for p in saved.iterdir()} >= {
        "1_Pooling",
        "2_Normalize",
        "README.md",
        "config.json",
        "config_sentence_transformers.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert json.loads((saved / "modules.json").read_text()) == [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.base.modules.normalize.Normalize",
        },
    ]
    assert json.loads((saved / "1_Pooling" / "config.json").read_text()) == {
        "embedding_dimension": 384,
        "pooling_mode": "mean",
        "include_prompt": True,
    }
    assert json.loads((saved / "sentence_bert_config.json").read_text()) == {
        "transformer_task": "feature-extraction",
        "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
        "module_output_name": "token_embeddings",
    }
    config = json.loads((saved / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "SentenceTransformer" and config["prompts"] == {"document": "", "query": ""}
    assert config["default_prompt_name"] is None and config["similarity_fn_name"] == "cosine"
    reloaded = SentenceTransformer(str(saved))
    np.testing.assert_allclose(reloaded.encode(["a test"]), model.encode(["a test"]), atol=1e-6)


def test_model_from_a_transformers_model_is_transformer_plus_mean_pooling(offline_hub):
    from embedstack import SentenceTransformer
    from embedstack.modules import Pooling, Transformer

    model = SentenceTransformer("google-bert/bert-base-uncased")
    transformer = Transformer("google-bert/bert-base-uncased")
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    explicit = SentenceTransformer(modules=[transformer, pooling])
    assert repr(model) == repr(explicit)
    np.testing.assert_allclose(model.encode(["same"]), explicit.encode(["same"]), atol=1e-6)


def test_decay_mean_pooling_example(offline_hub, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(SEED_DIR))
    from decay_pooling import DecayMeanPooling

    from embedstack import SentenceTransformer
    from embedstack.errors import UntrustedCodeError
    from embedstack.modules import Normalize, Transformer

    transformer = Transformer("google-bert/bert-base-uncased", max_seq_length=256)
    decay_mean_pooling = DecayMeanPooling(transformer.get_embedding_dimension(), decay=0.99)
    normalize = Normalize()

    model = SentenceTransformer(modules=[transformer, decay_mean_pooling, normalize])
    assert str(model) == SEED_REPR
    texts = [
        "Hello, World!",
        "The quick brown fox jumps over the lazy dog.",
        "I am a sentence that is used for testing purposes.",
        "This is a test sentence.",
        "This is another test sentence.",
    ]
    embeddings = model.encode(texts)
    assert embeddings.shape == (5, 768)

    model.save_pretrained(str(tmp_path / "decay"))
    entries = json.loads((tmp_path / "decay" / "modules.json").read_text())
    assert entries[1] == {"idx": 1, "name": "1", "path": "1_DecayMeanPooling", "type": "decay_pooling.DecayMeanPooling"}
    with pytest.raises(UntrustedCodeError, match="DecayMeanPooling"):
        SentenceTransformer(str(tmp_path / "decay"))
    shutil.copy(SEED_DIR / "decay_pooling.py", tmp_path / "decay" / "decay_pooling.py")
    sys.modules.pop("decay_pooling", None)
    reloaded = SentenceTransformer(str(tmp_path / "decay"), trust_remote_code=True)
    np.testing.assert_allclose(reloaded.encode(texts), embeddings, atol=1e-6)


def seed_modules_json(first_type: str, second_type: str, second_path: str, kwargs: list[str] | None = None):
    """The seed's modules.json listings (with its sentence-transformers 5.x Normalize path)."""
    first = {"idx": 0, "name": "0", "path": "", "type": first_type}
    if kwargs:
        first["kwargs"] = kwargs
    return [
        first,
        {"idx": 1, "name": "1", "path": second_path, "type": second_type},
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.sentence_transformer.modules.normalize.Normalize",
        },
    ]


def test_module_code_in_a_separate_repository(offline_hub, tmp_path):
    from embedstack import SentenceTransformer
    from embedstack.errors import UntrustedCodeError

    implementation = tmp_path / "implementation"
    implementation.mkdir()
    shutil.copy(SEED_DIR / "decay_pooling.py", implementation / "decay_pooling.py")
    add_to_cache(offline_hub, "my-user/my-model-implementation", implementation)
    model_folder = tmp_path / "model"
    shutil.copytree(offline_hub / "models--google-bert--bert-base-uncased" / "snapshots" / ("0" * 40), model_folder)
    (model_folder / "1_DecayMeanPooling").mkdir()
    (model_folder / "1_DecayMeanPooling" / "config.json").write_text(json.dumps({"dimension": 768, "decay": 0.99}))
    type_ref = "my-user/my-model-implementation--decay_pooling.DecayMeanPooling"
    (model_folder / "modules.json").write_text(
        json.dumps(
            seed_modules_json(
                "sentence_transformers.base.modules.transformer.Transformer", type_ref, "1_DecayMeanPooling"
            )
        )
    )
    add_to_cache(offline_hub, "your-username/your-model-id", model_folder)

    with pytest.raises(UntrustedCodeError, match="my-user/my-model-implementation"):
        SentenceTransformer("your-username/your-model-id")
    model = SentenceTransformer("your-username/your-model-id", trust_remote_code=True)
    assert type(model[1]).__name__ == "DecayMeanPooling" and model.encode("Hello, World!").shape == (768,)


def test_keyword_argument_passthrough(offline_hub, tmp_path):
    from embedstack import SentenceTransformer

    model_folder = tmp_path / "model"
    shutil.copytree(offline_hub / "models--google-bert--bert-base-uncased" / "snapshots" / ("0" * 40), model_folder)
    shutil.copy(SEED_DIR / "custom_transformer.py", model_folder / "custom_transformer.py")
    (model_folder / "1_Pooling").mkdir()
    (model_folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 768, "pooling_mode": "mean"})
    )
    entries = seed_modules_json(
        "custom_transformer.CustomTransformer",
        "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        "1_Pooling",
        kwargs=["task"],
    )
    (model_folder / "modules.json").write_text(json.dumps(entries))
    add_to_cache(offline_hub, "your-username/your-model-id-2", model_folder)

    model = SentenceTransformer("your-username/your-model-id-2", trust_remote_code=True)
    texts = ["Hello, World!", "This is a test sentence."]
    assert model.get_model_kwargs() == ["task"]
    plain = model.encode(texts, output_value="token_embeddings")
    default = model.encode(texts, output_value="token_embeddings", task="default")  # routed to CustomTransformer
    for doubled, single in zip(default, plain):
        np.testing.assert_allclose(doubled.numpy(), 2 * single.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\['tsk'\].*the valid additional keyword arguments are: \['task'\]"):
        model.encode(texts, tsk="default")
