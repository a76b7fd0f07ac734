"""Parquet in and out of `embedstack encode` without Ray: shards equal encode, ids kept, clear errors for bad
inputs and foreign folders, and a job killed halfway resumes to the same files as an uninterrupted run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from embedstack import SentenceTransformer  # noqa: E402
from embedstack.cli import main  # noqa: E402
from embedstack.shards import MANIFEST  # noqa: E402

TEXTS = [f"document {i}: {' '.join(['word'] * (i % 17))} about topic {i % 7}" for i in range(200)]
TEXTS[5] = TEXTS[6]  # a duplicate


def read_shards(folder):
    table = pa.concat_tables([pq.read_table(path) for path in sorted(folder.glob("part-*.parquet"))])
    return table.sort_by("row")


def test_parquet_in_shards_out_equals_encode(tmp_path, tiny_bert_path):
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(200)], "body": TEXTS}), corpus, row_group_size=64)
    out = tmp_path / "out"
    argv = ["encode", "-i", str(corpus), "--column", "body", "--id-column", "doc_id", "-o", str(out)]
    assert main([*argv, "--shard-rows", "64", "--model", str(tiny_bert_path), "--normalize"]) == 0
    assert sorted(path.name for path in out.iterdir()) == [MANIFEST] + [f"part-0000{i}.parquet" for i in range(4)]
    table = read_shards(out)
    assert table.column_names == ["row", "doc_id", "embedding"]
    assert table.column("row").to_pylist() == list(range(200))
    assert table.column("doc_id").to_pylist() == [f"d{i}" for i in range(200)]
    assert pa.types.is_fixed_size_list(table.schema.field("embedding").type)
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    expected = SentenceTransformer(str(tiny_bert_path), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.abs(vectors - expected).max() <= 1e-5


def test_a_jsonl_glob_and_binary_precision(tmp_path, tiny_bert_path):
    for part in range(2):
        rows = [{"text": text} for text in TEXTS[part * 100 : (part + 1) * 100]]
        (tmp_path / f"in-{part}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    argv = ["encode", "-i", str(tmp_path / "in-*.jsonl"), "-o", str(out), "--precision", "ubinary"]
    assert main([*argv, "--model", str(tiny_bert_path)]) == 0
    table = read_shards(out)
    assert table.column_names == ["row", "embedding"] and table.num_rows == 200
    packed = np.array(table.column("embedding").to_pylist(), dtype=np.uint8)
    expected = SentenceTransformer(str(tiny_bert_path), device="cpu").encode(TEXTS, precision="ubinary")
    assert packed.shape == (200, 4) and np.array_equal(packed, expected)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PAR1 this is not really parquet", "is not a readable Parquet file"),
        (b"id,text\n1,hello\n", "is not a readable Parquet file"),
        (None, "has no column 'text' (columns: body)"),
    ],
)
def test_a_bad_parquet_input_is_one_clear_error(tmp_path, capsys, content, message):
    corpus = tmp_path / "corpus.parquet"
    if content is None:
        pq.write_table(pa.table({"body": ["a"]}), corpus)
    else:
        corpus.write_bytes(content)
    assert main(["encode", "-i", str(corpus), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(corpus) in err
    assert not list((tmp_path / "out").glob("part-*"))


def test_a_folder_of_another_job_or_int8_is_refused(tmp_path, tiny_bert_path, capsys):
    corpus = tmp_path / "in.txt"
    corpus.write_text("one\ntwo\n")
    out = tmp_path / "out"
    base = ["encode", "-i", str(corpus), "-o", str(out), "--model", str(tiny_bert_path)]
    assert main(base) == 0
    assert main([*base, "--normalize"]) == 2
    assert "holds the shards of another job" in capsys.readouterr().err
    assert main([*base[:4], str(tmp_path / "other"), *base[5:], "--precision", "int8"]) == 2
    assert "int8/uint8 need value ranges over the whole corpus" in capsys.readouterr().err
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / "notes.txt").write_text("mine")
    assert main([*base[:4], str(tmp_path / "stranger"), *base[5:]]) == 2
    assert "is no embedstack job folder" in capsys.readouterr().err


def test_without_pyarrow_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert main(["encode", "-i", str(tmp_path / "x.parquet"), "-o", str(tmp_path / "out")]) == 2
    assert "pip install 'embedstack[parquet]'" in capsys.readouterr().err


def test_the_core_imports_neither_pyarrow_nor_ray():
    code = (
        "import sys, embedstack, embedstack.cli; embedstack.SentenceTransformer; "
        "print([m for m in ('pyarrow', 'ray', 'embedstack.ray', 'embedstack.shards') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]"


def wait_until(condition, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "the job ended before it was killed"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def feed(path, data, process):
    """Open the pipe ``path`` once the job reads it and write ``data``, never blocking; the pipe stays open."""
    opened = []

    def try_open():
        try:
            opened.append(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader yet
            return False
        return True

    wait_until(try_open, process)
    view = memoryview(data)

    def write_some():
        nonlocal view
        try:
            view = view[os.write(opened[0], view) :]
        except BlockingIOError:
            pass
        return not view

    wait_until(write_some, process)
    return opened[0]


def test_a_killed_job_resumes_to_the_files_of_an_uninterrupted_run(tmp_path, tiny_bert_path):
    lines = [json.dumps({"id": i, "text": f"{TEXTS[i % 200]} #{i}"}) + "\n" for i in range(5000)]
    corpus = tmp_path / "corpus.jsonl"

    def command(out):
        return [sys.executable, "-m", "embedstack.cli", "encode", "-i", str(corpus), "--id-column", "id",
                "-o", str(out), "--shard-rows", "1000", "--model", str(tiny_bert_path), "--no-progress"]  # fmt: skip

    corpus.write_text("".join(lines))
    subprocess.run(command(tmp_path / "whole"), check=True, timeout=300, capture_output=True)
    # The killed run reads a pipe that stops after 4,500 rows: it writes shards 0-3, then waits for rows that
    # never come, and is killed there (SIGKILL: nothing of it runs after).
    corpus.unlink()
    os.mkfifo(corpus)
    resumed = tmp_path / "resumed"
    process = subprocess.Popen(command(resumed), stderr=subprocess.DEVNULL)
    try:
        pipe = feed(corpus, "".join(lines[:4500]).encode(), process)
        wait_until(lambda: len(list(resumed.glob("part-*.parquet"))) >= 4, process)
        process.kill()
        process.wait(30)
        os.close(pipe)
    finally:
        process.kill()
    assert sorted(path.name for path in resumed.glob("part-*")) == [f"part-0000{i}.parquet" for i in range(4)]
    (resumed / ".part-00004.parquet.partial").write_bytes(b"half a shard")  # what a kill mid-write leaves
    corpus.unlink()
    corpus.write_text("".join(lines))
    result = subprocess.run(command(resumed), check=True, timeout=300, capture_output=True, text=True)
    assert "Wrote 1 shards (1000 rows" in result.stderr and "4 were already complete" in result.stderr
    names = sorted(path.name for path in (tmp_path / "whole").iterdir())
    assert sorted(path.name for path in resumed.iterdir()) == names
    for name in names:
        assert (resumed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
