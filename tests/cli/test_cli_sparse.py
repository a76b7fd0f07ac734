"""`embedstack encode` with a SparseEncoder: .jsonl (with and without --decode) and Parquet shards hold what
model.encode gives, --max-active-dims reaches it, the top tokens are printed, and what a sparse model cannot write
(.npy, the dense options) is one clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embedstack import SparseEncoder
from embedstack.cache import EmbeddingStore
from embedstack.cache.sparse_rows import csr_parts
from embedstack.cli import main

TEXTS = [f"text {i}: {' '.join(['word'] * (i % 5))} on subject {i % 3}" for i in range(12)]
TEXTS[4] = TEXTS[7]  # a duplicate


@pytest.fixture(scope="module")
def sparse_path(mlm_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sparse") / "model"
    SparseEncoder(str(mlm_path), device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def model(sparse_path):
    return SparseEncoder(str(sparse_path), device="cpu")


def rows_of(matrix: torch.Tensor) -> list[tuple[list[int], np.ndarray]]:
    bounds, indices, values = csr_parts(matrix)
    return [(indices[a:b].tolist(), values[a:b].numpy()) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def dense(indices: list[list[int]], values: list[list[float]], width: int) -> np.ndarray:
    matrix = np.zeros((len(indices), width), dtype=np.float32)  # (rows, vocab)
    for row, (columns, weights) in enumerate(zip(indices, values)):
        matrix[row, columns] = weights
    return matrix


def write_txt(folder, texts=TEXTS):
    path = folder / "in.txt"
    path.write_text("\n".join(texts) + "\n")
    return path


@pytest.mark.parametrize("decode", [False, True])
def test_jsonl_holds_the_indices_and_values_of_encode(sparse_path, model, tmp_path, decode):
    out = tmp_path / "out.jsonl"
    argv = ["encode", "-m", str(sparse_path), "-i", str(write_txt(tmp_path)), "-o", str(out)]
    assert main(argv + (["--decode"] if decode else [])) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [record["text"] for record in records] == TEXTS
    expected = rows_of(model.encode(TEXTS))
    for record, (indices, values) in zip(records, expected):
        assert set(record) == {"text", "indices", "values", *(["tokens"] if decode else [])}
        assert record["indices"] == indices  # ascending vocabulary dimensions
        np.testing.assert_array_equal(np.array(record["values"], dtype=np.float32), values)
        if decode:
            assert record["tokens"] == model.tokenizer.convert_ids_to_tokens(indices)


def test_max_active_dims_keeps_the_largest_weights(sparse_path, model, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["encode", "-m", str(sparse_path), *TEXTS[:3], "-o", str(out), "--max-active-dims", "5"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(record["indices"]) for record in records] == [5, 5, 5]
    for record, (indices, values) in zip(records, rows_of(model.encode(TEXTS[:3], max_active_dims=5))):
        assert record["indices"] == indices
        np.testing.assert_array_equal(np.array(record["values"], dtype=np.float32), values)
    assert main(["encode", "-m", str(sparse_path), "x", "--max-active-dims", "0"]) == 2
    assert "--max-active-dims must be a positive integer" in capsys.readouterr().err


def test_printed_output_lists_the_top_tokens(sparse_path, model, capsys):
    assert main(["encode", "-m", str(sparse_path), *TEXTS[:2], "--max-active-dims", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("3 active" in line for line in lines)
    for line, decoded in zip(lines, model.decode(model.encode(TEXTS[:2], max_active_dims=3))):
        assert [part.rsplit(":", 1)[0] for part in line.split("[", 1)[1].rstrip("]").split()] == [
            token for token, _ in decoded
        ]


def test_parquet_shards_hold_indices_and_values(sparse_path, model, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": text}) + "\n" for i, text in enumerate(TEXTS)))
    out = tmp_path / "shards"
    argv = ["encode", "-m", str(sparse_path), "-i", str(corpus), "--id-column", "id", "-o", str(out)]
    assert main([*argv, "--shard-rows", "5", "--max-active-dims", "8", "--no-progress"]) == 0
    assert sorted(path.name for path in out.glob("part-*.parquet")) == [f"part-0000{i}.parquet" for i in range(3)]
    table = pa.concat_tables([pq.read_table(path) for path in sorted(out.glob("part-*.parquet"))])
    assert table.schema.names == ["row", "id", "indices", "values"]
    assert table.schema.field("indices").type == pa.list_(pa.int32())
    assert table.schema.field("values").type == pa.list_(pa.float32())
    assert table.column("row").to_pylist() == list(range(len(TEXTS)))
    assert table.column("id").to_pylist() == [f"d{i}" for i in range(len(TEXTS))]
    indices, values = table.column("indices").to_pylist(), table.column("values").to_pylist()
    assert all(len(row) == 8 and row == sorted(row) for row in indices)
    expected = model.encode(TEXTS, max_active_dims=8).to_dense().numpy()  # (rows, vocab)
    np.testing.assert_allclose(dense(indices, values, expected.shape[1]), expected, atol=1e-5)


def test_the_cache_option_reaches_the_sparse_encoder(sparse_path, tmp_path):
    cache = tmp_path / "cache.sqlite"
    argv = ["encode", "-m", str(sparse_path), *TEXTS, "-o", str(tmp_path / "out.jsonl"), "--cache", str(cache)]
    assert main([*argv, "--max-active-dims", "4"]) == 0
    assert EmbeddingStore(cache).info().vectors == len(set(TEXTS))


@pytest.mark.parametrize(
    "options, message",
    [
        (["-o", "{tmp}/out.npy"], "a .npy file holds dense arrays"),
        (["--normalize"], "--normalize is for dense vectors"),
        (["--precision", "binary"], "--precision is for dense vectors"),
        (["--long-inputs", "split", "-o", "{tmp}/out.jsonl"], "--long-inputs is for dense vectors"),
        (["--decode", "-i", "{tmp}/in.txt", "-o", "{tmp}/shards"], "Parquet shards hold the indices and values only"),
    ],
)
def test_what_a_sparse_model_cannot_write_is_one_clear_error(sparse_path, tmp_path, capsys, options, message):
    write_txt(tmp_path)
    argv = ["encode", "-m", str(sparse_path), *[option.format(tmp=tmp_path) for option in options]]
    assert main(argv if "-i" in options else [*argv, "a text"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.txt"]  # nothing written


def test_a_dense_model_refuses_the_sparse_options(tiny_bert_path, capsys):
    for option in (["--max-active-dims", "4"], ["--decode"]):
        assert main(["encode", "-m", str(tiny_bert_path), "a text", *option]) == 2
        assert f"{option[0]} is for sparse models" in capsys.readouterr().err
