"""Property test: a real model folder, mutated at random, either loads and encodes to the right shape or raises one
of embedstack's documented errors (never a bare KeyError, IndexError, TypeError or JSONDecodeError from inside),
and never runs code from the folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedstack import SentenceTransformer
from embedstack.errors import EmbedstackError

DOCUMENTED_ERRORS = (EmbedstackError, ImportError)
TEXTS = ["fuzzing a model folder", "", "second text"]
JSON_FILES = (
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "2_Dense/config.json",
)
BINARY_FILES = ("2_Dense/model.safetensors", "model.safetensors", "tokenizer.json")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5000) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def _nodes(value, path=()):
    """Every (path, node) in a JSON document."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _nodes(child, (*path, index))


def _replace(document, path, new):
    if not path:
        return new
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    if new is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return document


_DELETE = object()


def mutate_json(data, file: Path) -> str:
    document = json.loads(file.read_text())
    nodes = list(_nodes(document))
    path, _ = data.draw(st.sampled_from(nodes), label="node")
    new = data.draw(st.just(_DELETE) | json_values, label="value") if path else data.draw(json_values, label="value")
    file.write_text(json.dumps(_replace(document, path, new)))
    return f"{file.name}{list(path)} -> {'<deleted>' if new is _DELETE else new!r}"


def mutate_bytes(data, file: Path) -> str:
    raw = bytearray(file.read_bytes())
    kind = data.draw(st.sampled_from(["truncate", "header byte"]), label="kind")
    if kind == "truncate":
        cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
        file.write_bytes(bytes(raw[:cut]))
        return f"{file.name} cut at {cut}"
    position = data.draw(st.integers(0, min(len(raw) - 1, 200)), label="position")  # length prefix and header
    raw[position] = data.draw(st.integers(0, 255), label="byte")
    file.write_bytes(bytes(raw))
    return f"{file.name} byte {position} changed"


# CI runs a fixed set of 60 examples; FUZZ_EXAMPLES=500 explores new random ones (a longer local search).
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))


@settings(
    max_examples=FUZZ_EXAMPLES or 60,
    deadline=None,
    derandomize=not FUZZ_EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_folder_loads_or_fails_with_our_error(data, stack_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz") / "model"
    shutil.copytree(stack_folder, folder)
    target = data.draw(st.sampled_from(JSON_FILES + BINARY_FILES + ("delete a file",)), label="target")
    if target == "delete a file":
        victim = data.draw(st.sampled_from(sorted(p for p in folder.rglob("*") if p.is_file())), label="file")
        victim.unlink()
    elif target in JSON_FILES:
        mutate_json(data, folder / target)
    else:
        mutate_bytes(data, folder / target)
    try:
        model = SentenceTransformer(str(folder), device="cpu")
        embeddings = model.encode(TEXTS)
    except DOCUMENTED_ERRORS:
        return
    assert embeddings.shape[0] == len(TEXTS)
    assert embeddings.shape[1] == model.get_embedding_dimension()
    assert np.isfinite(embeddings).all() or target in BINARY_FILES  # a changed weight byte can be a NaN
