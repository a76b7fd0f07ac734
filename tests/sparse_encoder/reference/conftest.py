"""Fixtures for the vendored sentence-transformers SparseEncoder tests (tests/sparse_encoder/reference/).

Upstream's tests load small models from the Hugging Face Hub (tests/conftest.py of huggingface/sentence-transformers).
These tests run offline, so each Hub id they name is stood in for by a tiny random model built here (2 layers, 32
wide, the MiniLM tokenizer) and placed in a private Hub cache under that id; the test bodies keep upstream's ids.
While a test module runs, ``SENTENCE_TRANSFORMERS_HOME`` and ``huggingface_hub.constants.HF_HUB_CACHE`` point at that
cache (restored after the module). The session-scoped model fixtures load their Hub id with the same two settings
patched for the duration of the load only. As upstream's, the per-test model fixtures are deep copies of a
session-scoped model, except that the copies share its tokenizers (copying a tokenizer takes ~0.1 s, which over the
~340 tests was most of the suite's time); a test's change to a tokenizer's ``model_max_length`` (``max_seq_length``)
is undone after the test.

Stand-ins (built and saved with sentence-transformers 6.2 itself):

* ``sparse-encoder-testing/splade-bert-tiny-nq``: a random BertForMaskedLM (``Transformer`` with
  ``transformer_task="fill-mask"``) + ``SpladePooling("max")``. The MLM's output bias is set to -3.8 so that, as
  with the real trained model, a text activates some tens of the 30522 vocabulary dimensions (a random MLM
  activates about half of them), which upstream's sparsity checks (``active_dims < 100``) rely on. Its
  ``SpladePooling`` config records the 30522-wide output, as a trained model's does.
* ``sparse-encoder-testing/inference-free-splade-bert-tiny-nq``: a ``Router`` with a frozen ``SparseStaticEmbedding``
  (positive random weights) on the query route and another such MLM + ``SpladePooling("max")`` on the document
  route; both allow 512 tokens, as the real one does.
* ``sentence-transformers-testing/stsb-bert-tiny-safetensors``: a SentenceTransformer (BertModel + mean Pooling),
  which a SparseEncoder loads as CSR (appending a ``SparseAutoEncoder``).
* ``distilbert/distilbert-base-uncased``: a plain Hugging Face DistilBertForMaskedLM folder.

The folder layout. The real ``splade-bert-tiny-nq`` and ``inference-free-splade-bert-tiny-nq`` repositories date from
sentence-transformers 5.0, so their ``modules.json``/``router_config.json`` most likely name the deprecated
``sentence_transformers.sparse_encoder.models.MLMTransformer`` (not checkable offline), with
``...sparse_encoder.models.SpladePooling``, ``...sparse_encoder.models.SparseStaticEmbedding`` and
``sentence_transformers.models.Router``. embedstack's registry does not resolve ``MLMTransformer`` yet (see
README.md), so by default the stand-ins use the 6.2 layout. ``EMBEDSTACK_REFERENCE_SE_LAYOUT=5.0`` rewrites them into
the 5.0 layout (type names, ``sentence_bert_config.json`` and ``SpladePooling``'s ``word_embedding_dimension``), for
checking that gap.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path

import pytest
import torch

from embedstack import SparseEncoder
from helpers import add_to_cache, copy_tokenizer

SPLADE_ID = "sparse-encoder-testing/splade-bert-tiny-nq"
INFERENCE_FREE_ID = "sparse-encoder-testing/inference-free-splade-bert-tiny-nq"
STSB_TINY_ID = "sentence-transformers-testing/stsb-bert-tiny-safetensors"
DISTILBERT_ID = "distilbert/distilbert-base-uncased"
VOCAB = 30522  # SpladePooling's width, saved as a trained model has it (a new SpladePooling knows it after a pass)
MLM_BIAS = -3.8  # the MLM head's output bias: a few tens of active dimensions per text, as a trained SPLADE model
V50_LAYOUT = os.environ.get("EMBEDSTACK_REFERENCE_SE_LAYOUT") == "5.0"
V50_TYPES = {
    "sentence_transformers.base.modules.transformer.Transformer": (
        "sentence_transformers.sparse_encoder.models.MLMTransformer"
    ),
    "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling": (
        "sentence_transformers.sparse_encoder.models.SpladePooling"
    ),
    "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding": (
        "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding"
    ),
    "sentence_transformers.base.modules.router.Router": "sentence_transformers.models.Router",
}


def _bert_config(**extra: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **extra,
    )


def _tiny_sparse_mlm(target: Path, seed: int) -> Path:
    """A random BertForMaskedLM (weights with std 0.2, output bias MLM_BIAS), as a plain Hugging Face folder."""
    from transformers import BertForMaskedLM

    torch.manual_seed(seed)
    model = BertForMaskedLM(_bert_config(initializer_range=0.2))
    with torch.no_grad():
        model.cls.predictions.bias.fill_(MLM_BIAS)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    copy_tokenizer(target)
    return target


def _to_v50_layout(folder: Path) -> None:
    """Rewrite a 6.2 save into what sentence-transformers 5.0 wrote (MLMTransformer and the "models" spellings)."""
    for name in ("modules.json", "router_config.json"):
        path = folder / name
        if path.exists():
            text = path.read_text()
            for new, old in V50_TYPES.items():
                text = text.replace(f'"{new}"', f'"{old}"')
            path.write_text(text)
    for config in folder.rglob("sentence_bert_config.json"):  # MLMTransformer's own settings
        config.write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}, indent=2))
    for config in folder.rglob("config.json"):
        if config.parent.name.endswith("SpladePooling"):
            settings = json.loads(config.read_text())
            settings["word_embedding_dimension"] = settings.pop("embedding_dimension", None) or VOCAB
            config.write_text(json.dumps(settings, indent=2))


def _splade(target: Path, mlm: Path) -> Path:
    from sentence_transformers import SparseEncoder as Reference
    from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer

    modules = [Transformer(str(mlm), transformer_task="fill-mask"), SpladePooling("max", embedding_dimension=VOCAB)]
    Reference(modules=modules, device="cpu").save_pretrained(str(target))
    return target


def _inference_free_splade(target: Path, mlm: Path) -> Path:
    from sentence_transformers import SparseEncoder as Reference
    from sentence_transformers.sparse_encoder.modules import Router, SparseStaticEmbedding, SpladePooling, Transformer

    document = Transformer(str(mlm), transformer_task="fill-mask")
    generator = torch.Generator().manual_seed(3)
    weights = torch.rand(document.tokenizer.vocab_size, generator=generator) + 0.1  # every token has a weight
    router = Router.for_query_document(
        query_modules=[SparseStaticEmbedding(document.tokenizer, weight=weights, frozen=True)],
        document_modules=[document, SpladePooling("max", embedding_dimension=VOCAB)],
    )
    Reference(modules=[router], similarity_fn_name="dot", device="cpu").save_pretrained(str(target))
    return target


def _tiny_sentence_transformer(target: Path) -> Path:
    """A SentenceTransformer folder (BertModel + mean pooling), saved by sentence-transformers 6.2."""
    from sentence_transformers import SentenceTransformer as Reference
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertModel

    backbone = target.parent / f"{target.name}-backbone"
    torch.manual_seed(0)
    BertModel(_bert_config()).save_pretrained(backbone)
    copy_tokenizer(backbone)
    Reference(modules=[Transformer(str(backbone)), Pooling(32)], device="cpu").save_pretrained(str(target))
    return target


def _tiny_distilbert_mlm(target: Path) -> Path:
    from transformers import DistilBertConfig, DistilBertForMaskedLM

    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    target.mkdir(parents=True, exist_ok=True)
    DistilBertForMaskedLM(config).save_pretrained(target)
    copy_tokenizer(target)
    return target


def _clear_warning_once_cache() -> None:
    # Nothing to clear when warning_once is not the lru_cache-wrapped transformers version, as then
    # it does not suppress repeats in the first place.
    cache_clear = getattr(getattr(logging.Logger, "warning_once", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


@pytest.fixture(autouse=True)
def clear_warning_once_cache():
    """Upstream's (tests/conftest.py): transformers caches ``warning_once`` globally, so a warning one test emits
    would be silent in every later test. embedstack warns with plain ``logging``; kept so the tests run alike."""
    _clear_warning_once_cache()
    return _clear_warning_once_cache


@pytest.fixture(scope="session")
def reference_se_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The stand-in model folders, by the Hub id they stand in for."""
    root = tmp_path_factory.mktemp("reference-se-models")
    folders = {
        SPLADE_ID: _splade(root / "splade", _tiny_sparse_mlm(root / "splade-mlm", seed=0)),
        INFERENCE_FREE_ID: _inference_free_splade(root / "inference-free", _tiny_sparse_mlm(root / "if-mlm", seed=1)),
        STSB_TINY_ID: _tiny_sentence_transformer(root / "stsb-bert-tiny"),
        DISTILBERT_ID: _tiny_distilbert_mlm(root / "distilbert"),
    }
    if V50_LAYOUT:
        for repo_id in (SPLADE_ID, INFERENCE_FREE_ID):
            _to_v50_layout(folders[repo_id])
        assert "MLMTransformer" in (folders[SPLADE_ID] / "modules.json").read_text()
    return folders


@pytest.fixture(scope="session")
def reference_se_hub_cache(tmp_path_factory: pytest.TempPathFactory, reference_se_folders: dict[str, Path]) -> Path:
    """A Hugging Face Hub cache holding each stand-in as the main revision of the id it stands in for."""
    cache = tmp_path_factory.mktemp("reference-se-hub")
    for repo_id, folder in reference_se_folders.items():
        add_to_cache(cache, repo_id, folder)
    return cache


@contextmanager
def _hub_from(cache: Path) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(cache))
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="module", autouse=True)
def offline_hub(reference_se_hub_cache: Path):
    """Resolve Hub ids from the stand-in cache while this module's tests run."""
    with _hub_from(reference_se_hub_cache) as cache:
        yield cache


def _copy(model: SparseEncoder) -> Iterator[SparseEncoder]:
    """A deep copy of ``model`` that shares its tokenizers; their ``model_max_length`` is restored afterwards."""
    tokenizers = {
        id(value): value
        for module in model.modules()
        for name in ("tokenizer", "processor")
        if (value := getattr(module, name, None)) is not None
    }
    lengths = {key: getattr(tokenizer, "model_max_length", None) for key, tokenizer in tokenizers.items()}
    yield deepcopy(model, memo=dict(tokenizers))
    for key, tokenizer in tokenizers.items():
        if lengths[key] is not None:
            tokenizer.model_max_length = lengths[key]


def _load(cache: Path, model_id: str) -> SparseEncoder:
    with _hub_from(cache):  # session fixtures are set up before the module's offline_hub
        return SparseEncoder(model_id)


# Sparse Encoders (upstream: tests/conftest.py)
@pytest.fixture(scope="session")
def _splade_bert_tiny_model(reference_se_hub_cache: Path) -> SparseEncoder:
    model = _load(reference_se_hub_cache, SPLADE_ID)
    model.model_card_data.generate_widget_examples = False  # Disable widget examples generation for testing
    return model


@pytest.fixture()
def splade_bert_tiny_model(_splade_bert_tiny_model: SparseEncoder) -> Iterator[SparseEncoder]:
    yield from _copy(_splade_bert_tiny_model)


@pytest.fixture(scope="session")
def _inference_free_splade_bert_tiny_model(reference_se_hub_cache: Path) -> SparseEncoder:
    model = _load(reference_se_hub_cache, INFERENCE_FREE_ID)
    model.model_card_data.generate_widget_examples = False  # Disable widget examples generation for testing
    return model


@pytest.fixture()
def inference_free_splade_bert_tiny_model(
    _inference_free_splade_bert_tiny_model: SparseEncoder,
) -> Iterator[SparseEncoder]:
    yield from _copy(_inference_free_splade_bert_tiny_model)


@pytest.fixture(scope="session")
def _csr_bert_tiny_model(reference_se_hub_cache: Path) -> SparseEncoder:
    model = _load(reference_se_hub_cache, STSB_TINY_ID)
    model[-1].k = 16
    model[-1].k_aux = 32
    model.model_card_data.generate_widget_examples = False  # Disable widget examples generation for testing
    return model


@pytest.fixture()
def csr_bert_tiny_model(_csr_bert_tiny_model: SparseEncoder) -> Iterator[SparseEncoder]:
    yield from _copy(_csr_bert_tiny_model)
