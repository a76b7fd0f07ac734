"""The embedding cache: exact hits, a miss for every change that changes a vector, and a file that survives."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from embedstack import SentenceTransformer
from embedstack.cache import EmbeddingStore, model_fingerprint
from embedstack.chunking import LongInputs
from embedstack.cli import main
from embedstack.modules import Normalize, Pooling, Transformer

TEXTS = ["The cat sat on the mat.", "A dog ran in the park.", "Stocks fell sharply today.", "word " * 40]


def build(path, cache=None, pooling="mean", max_seq_length=24):
    transformer = Transformer(str(path), max_seq_length=max_seq_length)
    modules = [transformer, Pooling(32, pooling_mode=pooling), Normalize()]
    return SentenceTransformer(modules=modules, device="cpu", prompts={"query": "query: "}, cache=cache)


@pytest.fixture
def cache_file(tmp_path):
    return tmp_path / "cache.sqlite"


def stored(path) -> int:
    return EmbeddingStore(path).info().vectors


def test_warm_cache_gives_the_same_bits_and_stores_nothing_new(tiny_bert_path, cache_file):
    model = build(tiny_bert_path, cache=cache_file)
    cold = model.encode(TEXTS)
    assert stored(cache_file) == len(TEXTS)
    warm = build(tiny_bert_path, cache=cache_file).encode(TEXTS)  # another model object, same weights: hits
    assert warm.tobytes() == cold.tobytes()
    assert stored(cache_file) == len(TEXTS)
    uncached = build(tiny_bert_path).encode(TEXTS)
    assert cold.tobytes() == uncached.tobytes()
    # Duplicates, a mix of hits and misses, and input order.
    mixed = model.encode([TEXTS[2], "new text", TEXTS[0], "new text"])
    assert stored(cache_file) == len(TEXTS) + 1
    np.testing.assert_array_equal(mixed[[0, 2]], cold[[2, 0]])
    np.testing.assert_array_equal(mixed[1], mixed[3])
    assert model.encode(TEXTS[1]).tobytes() == cold[1].tobytes()  # a single string


# Each row: a change of one keyed setting. The encode with the change must store len(TEXTS) new vectors (misses)
# and return what the same encode returns without a cache.
SETTING_CHANGES = {
    "prompt": dict(prompt="query: "),
    "prompt_name": dict(prompt_name="query"),
    "normalize_embeddings": dict(normalize_embeddings=True),
    "truncate_dim": dict(truncate_dim=16),
    "long_inputs mode": dict(long_inputs="pool"),
    "long_inputs overlap": dict(long_inputs=LongInputs("pool", overlap=8)),
    "long_inputs pooling": dict(long_inputs=LongInputs("pool", pooling="max")),
    "task": dict(task="query"),
}


@pytest.mark.parametrize("change", list(SETTING_CHANGES), ids=list(SETTING_CHANGES))
def test_a_changed_encode_setting_misses(tiny_bert_path, cache_file, change):
    model = build(tiny_bert_path, cache=cache_file)
    plain = build(tiny_bert_path)
    model.encode(TEXTS)
    if change == "long_inputs overlap" or change == "long_inputs pooling":
        model.encode(TEXTS, long_inputs="pool")  # the base for these two is pool mode with the defaults
    before = stored(cache_file)
    kwargs = SETTING_CHANGES[change]
    out = model.encode(TEXTS, **kwargs)
    assert stored(cache_file) - before == len(TEXTS)
    np.testing.assert_array_equal(out, plain.encode(TEXTS, **kwargs))
    np.testing.assert_array_equal(model.encode(TEXTS, **kwargs), out)  # and now hits
    assert stored(cache_file) - before == len(TEXTS)


def test_a_changed_model_misses(tiny_bert_path, tmp_path, cache_file):
    texts = TEXTS[:2]
    base = build(tiny_bert_path, cache=cache_file)
    base.encode(texts)
    count = stored(cache_file)

    def misses(model, expected_uncached):
        nonlocal count
        out = model.encode(texts)
        grown, count = stored(cache_file) - count, stored(cache_file)
        np.testing.assert_array_equal(out, expected_uncached)
        return grown

    # max_seq_length
    shorter = build(tiny_bert_path, cache=cache_file, max_seq_length=8)
    assert misses(shorter, build(tiny_bert_path, max_seq_length=8).encode(texts)) == 2
    # a module config (pooling mode)
    maxed = build(tiny_bert_path, cache=cache_file, pooling="max")
    assert misses(maxed, build(tiny_bert_path, pooling="max").encode(texts)) == 2
    # one weight, changed in place
    model = build(tiny_bert_path, cache=cache_file)
    first = model.encode(texts)
    assert stored(cache_file) == count  # hits
    with torch.no_grad():
        model[0].auto_model.encoder.layer[0].output.dense.weight[0, 0] += 0.5
    out = model.encode(texts)
    assert stored(cache_file) == count + 2 and not np.array_equal(out, first)
    count += 2
    # dtype
    half = build(tiny_bert_path, cache=cache_file).to(torch.bfloat16)
    reference = build(tiny_bert_path).to(torch.bfloat16).encode(texts)
    assert misses(half, reference) == 2
    # the tokenizer (lowercasing off)
    cased = build(tiny_bert_path, cache=cache_file)
    cased.tokenizer.backend_tokenizer.normalizer = None
    plain_cased = build(tiny_bert_path)
    plain_cased.tokenizer.backend_tokenizer.normalizer = None
    assert misses(cased, plain_cased.encode(texts)) == 2


def test_the_backend_is_part_of_the_key(minilm_path, cache_file):
    texts = ["backend one", "backend two"]
    torch_model = SentenceTransformer(str(minilm_path), device="cpu", backend="torch", cache=cache_file)
    native = SentenceTransformer(str(minilm_path), device="cpu", backend="native", cache=cache_file)
    torch_model.encode(texts)
    assert model_fingerprint(torch_model) != model_fingerprint(native)
    native.encode(texts)
    assert stored(cache_file) == 4


def test_precision_is_applied_to_the_cached_floats(tiny_bert_path, cache_file):
    model, plain = build(tiny_bert_path, cache=cache_file), build(tiny_bert_path)
    model.encode(TEXTS)
    for precision in ("int8", "uint8", "binary", "ubinary"):
        np.testing.assert_array_equal(
            model.encode(TEXTS, precision=precision), plain.encode(TEXTS, precision=precision)
        )
    assert stored(cache_file) == len(TEXTS)  # int8 calibrates over the batch: floats are stored, not int8 rows


def test_non_text_inputs_and_other_outputs_bypass_the_cache(tiny_bert_path, cache_file):
    model = build(tiny_bert_path, cache=cache_file)
    tokens = model.encode(TEXTS[:2], output_value="token_embeddings")
    assert len(tokens) == 2
    assert stored(cache_file) == 0
    model.encode(TEXTS[:2], long_inputs="split")
    assert stored(cache_file) == 0
    model.encode([("a", "b")])  # a text pair is cached, as its two texts
    assert stored(cache_file) == 1


def test_encode_iter_uses_the_cache(tiny_bert_path, cache_file):
    model = build(tiny_bert_path, cache=cache_file)
    streamed = np.stack(list(model.encode_iter(iter(TEXTS), window_size=3)))
    assert stored(cache_file) == len(TEXTS)
    np.testing.assert_allclose(streamed, build(tiny_bert_path).encode(TEXTS), atol=1e-6)  # other batches
    again = np.stack(list(build(tiny_bert_path, cache=cache_file).encode_iter(iter(TEXTS), window_size=2)))
    assert again.tobytes() == streamed.tobytes()


def test_a_corrupt_file_is_reported_moved_aside_and_rebuilt(tiny_bert_path, cache_file, caplog):
    model = build(tiny_bert_path, cache=cache_file)
    expected = model.encode(TEXTS)
    model.embedding_cache.close()
    cache_file.write_bytes(os.urandom(4096))
    for suffix in ("-wal", "-shm"):
        cache_file.with_name(cache_file.name + suffix).unlink(missing_ok=True)
    again = build(tiny_bert_path, cache=cache_file)
    with caplog.at_level(logging.WARNING, logger="embedstack"):
        np.testing.assert_array_equal(again.encode(TEXTS), expected)
    assert str(cache_file) in caplog.text and "not a readable cache" in caplog.text and "moved to" in caplog.text
    moved = list(cache_file.parent.glob("cache.sqlite.corrupt-*"))
    assert moved and moved[0].read_bytes()[:16] != b"SQLite format 3\x00"
    assert stored(cache_file) == len(TEXTS)


def test_garbage_inside_a_valid_file_is_detected(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    store = EmbeddingStore(path)
    store.put_many([(bytes([i]) * 32, "s", "torch.float32", b"\0" * 4000) for i in range(50)])
    store.close()
    data = bytearray(path.read_bytes())
    data[4096:12288] = os.urandom(8192)  # pages inside the table
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="embedstack"):
        found = EmbeddingStore(path).get_many([bytes([1]) * 32])
    assert found == {} and "moved to" in caplog.text


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from embedstack.cache import EmbeddingStore
    store = EmbeddingStore(sys.argv[1])
    batch = 0
    while True:
        rows = [(b"%08d" % batch + bytes(23) + bytes([i]), "s", "torch.float32", bytes(1536)) for i in range(200)]
        store.put_many(rows)
        batch += 1
        if batch == 1:
            print("ready", flush=True)
    """
)


def test_a_process_killed_mid_write_leaves_a_cache_that_opens(tmp_path):
    path = tmp_path / "killed.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline().strip() == b"ready"
        for _ in range(3):  # let it get well into later transactions
            stored_now = sqlite3.connect(path, timeout=30).execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
            assert stored_now >= 200
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    store = EmbeddingStore(path)
    info = store.info()
    assert info.vectors >= 200 and info.vectors % 200 == 0  # whole transactions only
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.put_many([(b"after" + bytes(27), "s", "torch.float32", bytes(4))])
    assert store.get_many([b"after" + bytes(27)])


def _writer(args):
    path, worker = args
    store = EmbeddingStore(path)
    for batch in range(10):
        rows = [(f"{worker}-{batch}-{i}".encode().ljust(32, b"."), "s", "torch.float32", bytes([worker]) * 64)
                for i in range(30)]  # fmt: skip
        rows.append((b"shared".ljust(32, b"."), "s", "torch.float32", bytes(64)))  # every worker writes this one
        store.put_many(rows)
    return True


@pytest.mark.slow
def test_four_processes_writing_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    EmbeddingStore(path).info()  # create the file first
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert pool.map(_writer, [(path, w) for w in range(4)], chunksize=1) == [True] * 4
    store = EmbeddingStore(path)
    assert store.info().vectors == 4 * 10 * 30 + 1
    keys = [f"{w}-{b}-{i}".encode().ljust(32, b".") for w in range(4) for b in range(10) for i in range(30)]
    found = store.get_many(keys)
    assert len(found) == len(keys)
    assert all(value == bytes([int(key[:1])]) * 64 for key, (_, value) in found.items())


def test_least_recently_used_vectors_are_evicted_past_the_cap(tmp_path):
    store = EmbeddingStore(tmp_path / "lru.sqlite", max_bytes=10 * 1000)
    keys = [bytes([i]) * 32 for i in range(10)]
    for key in keys:
        store.put_many([(key, "s", "torch.float32", bytes(1000))])
    store.get_many(keys[:3])  # the oldest three are now the most recently used
    store.put_many([(b"new".ljust(32, b"."), "s", "torch.float32", bytes(1000))])
    kept = set(store.get_many(keys))
    assert store.info().vector_bytes <= 9000
    assert set(keys[:3]) <= kept and keys[3] not in kept


def test_cache_command_info_and_clear(tmp_path, capsys, cache_file):
    assert main(["encode", "one", "two", "--cache", str(cache_file)]) == 0
    capsys.readouterr()
    assert main(["cache", "info", str(cache_file)]) == 0
    out = capsys.readouterr().out
    assert "Vectors: 2" in out and str(cache_file) in out
    assert main(["cache", "clear", str(cache_file)]) == 0
    assert "Deleted 2 vectors" in capsys.readouterr().out
    assert main(["cache", "info", str(tmp_path / "missing.sqlite")]) == 2
    assert "is not a file" in capsys.readouterr().err
