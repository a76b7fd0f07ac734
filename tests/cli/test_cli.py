"""The embedstack command: encode (args, .txt, .jsonl -> stdout, .npy, .jsonl), info, eval sts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from embedstack.cli import main


def test_encode_sample_sentences_prints_vectors_and_similarity(capsys):
    assert main(["encode"]) == 0
    out = capsys.readouterr().out
    assert "The weather is lovely today." in out and "dim=384" in out
    assert "Similarity (cosine):" in out


def test_encode_txt_to_npy_matches_the_library(tmp_path, minilm):
    source = tmp_path / "in.txt"
    texts = ["first line", "second line", "third, longer line of text"]
    source.write_text("\n".join(texts) + "\n")
    assert main(["encode", "--input", str(source), "--output", str(tmp_path / "out.npy")]) == 0
    vectors = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(vectors, minilm.encode(texts), atol=1e-5)  # auto: native or torch, whichever is faster


def test_encode_jsonl_field_to_jsonl(tmp_path, minilm):
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps({"id": i, "body": f"text number {i}"}) for i in range(3)) + "\n")
    assert main(["encode", "-i", str(source), "--field", "body", "-o", str(tmp_path / "out.jsonl"), "--normalize"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == [f"text number {i}" for i in range(3)]
    expected = minilm.encode([row["text"] for row in rows], normalize_embeddings=True)
    np.testing.assert_allclose(np.array([row["embedding"] for row in rows]), expected, atol=1e-5)


def test_encode_errors_are_one_clear_line(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "ok"}\n{"other": 1}\n')
    assert main(["encode", "-i", str(source)]) == 2
    assert "line 2 has no string field 'text'" in capsys.readouterr().err
    assert main(["encode", "x", "-o", str(tmp_path / "out.csv")]) == 2
    assert "must end in .npy or .jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_info_describes_the_model(capsys, minilm_path):
    assert main(["info", str(minilm_path)]) == 0
    out = capsys.readouterr().out
    assert "Pooling({'embedding_dimension': 384" in out
    assert "Embedding dimension: 384" in out and "Max sequence length: 256" in out
    assert "Modalities: text" in out and "Similarity function: cosine" in out
    assert 'Prompts: {"query": "", "document": ""}' in out


@pytest.mark.slow
def test_eval_sts_reproduces_the_mteb_figure(capsys):
    # In this process (the `python -m embedstack.cli` entry point runs in test_shards.py and test_server_cli.py).
    assert main(["eval", "sts"]) == 0
    out = capsys.readouterr().out
    score = float(re.search(r"cosine Spearman (\d+\.\d+)", out).group(1))
    assert abs(score - 82.03) <= 0.05, out
