"""The ``Example:`` blocks of src/embedstack run as doctests, offline, with the models built here.

An example finds, by name, what it uses: ``tiny_bert_path`` (a random 2-layer, 32-wide BERT folder),
``model2vec_path`` (a random model2vec folder of 256 dimensions) and ``model`` (the embedded all-MiniLM-L6-v2).
Each is built once per session, and only when an example names it. Examples leave the module registry as they
found it.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.doctest import DoctestItem

# The tests run offline and keep to their own folders and to loopback, whatever the machine's environment says.
os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
# backend="auto" remembers its measurements in the user's cache folder, and transformers copies remote code into
# ~/.cache/huggingface/modules: the tests keep both apart (one folder per run, shared by the processes they start).
_STATE = tempfile.mkdtemp(prefix="embedstack-test-state-")
os.environ["EMBEDSTACK_CACHE"] = os.path.join(_STATE, "embedstack")
os.environ["HF_MODULES_CACHE"] = os.path.join(_STATE, "hf-modules")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
for _name in ("EMBEDSTACK_API_KEY", "RAY_ADDRESS"):  # a server key or a Ray cluster of the user's own
    os.environ.pop(_name, None)

ROOT = Path(__file__).resolve().parent
# Code that the tests' model folders carry (imported only as model code) and the golden-file generator: never
# imported as doctest modules.
collect_ignore_glob = ["tests/remote_code/*", "tests/seed_samples/*", "tests/golden/*"]

# Name in the examples -> the fixture that makes it.
NAMESPACE_FIXTURES = {
    "tiny_bert_path": "doctest_tiny_bert_path",
    "cross_encoder_path": "doctest_cross_encoder_path",
    "mlm_path": "doctest_mlm_path",
    "model2vec_path": "doctest_model2vec_path",
    "model": "doctest_model",
}


@pytest.fixture(scope="session")
def doctest_tiny_bert_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random tiny BERT with the MiniLM tokenizer, saved as a plain Hugging Face folder."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from helpers import tiny_bert

    return str(tiny_bert(tmp_path_factory.mktemp("doctest-tiny-bert")))


@pytest.fixture(scope="session")
def doctest_cross_encoder_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random tiny one-label BertForSequenceClassification, saved as a plain Hugging Face folder."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from helpers import tiny_cross_encoder

    return str(tiny_cross_encoder(tmp_path_factory.mktemp("doctest-cross-encoder")))


@pytest.fixture(scope="session")
def doctest_mlm_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random tiny BertForMaskedLM, saved as a plain Hugging Face folder."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from helpers import tiny_mlm

    return str(tiny_mlm(tmp_path_factory.mktemp("doctest-mlm")))


@pytest.fixture(scope="session")
def doctest_model2vec_path(tmp_path_factory: pytest.TempPathFactory, doctest_tiny_bert_path: str) -> str:
    """A model2vec folder: a random (vocab, 256) ``embeddings`` table and the MiniLM ``tokenizer.json``."""
    import shutil

    import torch
    from safetensors.torch import save_file
    from tokenizers import Tokenizer

    folder = tmp_path_factory.mktemp("doctest-model2vec")
    tokenizer_file = Path(doctest_tiny_bert_path) / "tokenizer.json"
    vocab_size = Tokenizer.from_file(str(tokenizer_file)).get_vocab_size()
    generator = torch.Generator().manual_seed(0)
    save_file({"embeddings": torch.randn(vocab_size, 256, generator=generator)}, str(folder / "model.safetensors"))
    shutil.copy(tokenizer_file, folder / "tokenizer.json")
    return str(folder)


@pytest.fixture(scope="session")
def doctest_model() -> Any:
    """The embedded all-MiniLM-L6-v2, on CPU."""
    from embedstack import SentenceTransformer
    from embedstack.defaults import default_model_path

    return SentenceTransformer(str(default_model_path()), device="cpu")


@pytest.fixture(autouse=True)
def _doctest_objects(request: pytest.FixtureRequest) -> Iterator[None]:
    """Give a doctest the objects its examples name, and undo the registrations it makes."""
    if not isinstance(request.node, DoctestItem):
        yield
        return
    from embedstack import registry

    namespace = request.getfixturevalue("doctest_namespace")
    source = "".join(example.source for example in request.node.dtest.examples)
    for name, fixture in NAMESPACE_FIXTURES.items():
        if re.search(rf"\b{name}\b", source):
            namespace[name] = request.getfixturevalue(fixture)
    specs, by_type = dict(registry._SPECS), dict(registry._BY_TYPE)
    yield
    registry._SPECS.clear()
    registry._SPECS.update(specs)
    registry._BY_TYPE.clear()
    registry._BY_TYPE.update(by_type)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist's ``--dist loadgroup`` (scripts/test.sh runs two workers).

    Each file runs on one worker, so its module fixtures (a server, a Ray cluster, an export) are built once; the
    Ray files share one worker, since two local Ray clusters on one machine would compete for the same ports.
    """
    for item in items:
        path = item.path.as_posix()
        item.add_marker(pytest.mark.xdist_group("ray" if "/tests/ray/" in path else path))
