"""``embedstack rerank`` and ``embedstack info`` on a cross-encoder: the table, the .jsonl output, and the errors
that send a model of the other kind to the right command."""

from __future__ import annotations

import json

import numpy as np

from embedstack import CrossEncoder
from embedstack.cli.main import main

QUERY = "Who wrote 'To Kill a Mockingbird'?"
DOCUMENTS = [
    "'To Kill a Mockingbird' is a novel by Harper Lee published in 1960.",
    "The novel 'Moby-Dick' was written by Herman Melville.",
    "Harper Lee was born in 1926 in Monroeville, Alabama.",
    "Jane Austen was an English novelist.",
]


def test_rerank_prints_the_top_k_as_predict_orders_them(cross_encoder_path, tmp_path, capsys):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCUMENTS) + "\n")
    assert main(["rerank", "--model", str(cross_encoder_path), "-q", QUERY, "-i", str(docs), "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["rank", "score", "index", "text"] and len(lines) == 4
    expected = CrossEncoder(str(cross_encoder_path), device="cpu").rank(QUERY, DOCUMENTS, top_k=3)
    shown = [(int(line.split()[2]), float(line.split()[1])) for line in lines[1:]]
    assert [index for index, _ in shown] == [hit["corpus_id"] for hit in expected]
    assert np.allclose([score for _, score in shown], [hit["score"] for hit in expected], atol=1e-4)


def test_rerank_writes_jsonl_with_raw_scores(cross_encoder_path, tmp_path):
    out = tmp_path / "ranked.jsonl"
    argv = ["rerank", "-m", str(cross_encoder_path), "-q", QUERY, *DOCUMENTS, "-k", "0", "--raw-scores", "-o", str(out)]
    assert main(argv) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(record["index"] for record in records) == list(range(len(DOCUMENTS)))
    import torch

    logits = CrossEncoder(str(cross_encoder_path), device="cpu").predict(
        [(QUERY, d) for d in DOCUMENTS], activation_fn=torch.nn.Identity()
    )
    assert np.allclose([record["score"] for record in records], sorted(logits, reverse=True), atol=1e-5)
    assert all(record["text"] == DOCUMENTS[record["index"]] for record in records)


def test_each_command_names_the_right_one_for_the_other_kind(cross_encoder_path, stack_folder, capsys):
    assert main(["encode", "--model", str(cross_encoder_path), "hello"]) == 2
    error = capsys.readouterr().err
    assert "is a CrossEncoder" in error and "embedstack rerank" in error
    assert main(["rerank", "--model", str(stack_folder), "-q", "x", "a"]) == 2
    error = capsys.readouterr().err
    assert "is a SentenceTransformer" in error and "embedstack encode" in error
    assert main(["rerank", "--model", str(cross_encoder_path), "-q", "x"]) == 2
    assert "No documents to rank" in capsys.readouterr().err


def test_info_describes_a_cross_encoder(cross_encoder_path, capsys):
    assert main(["info", str(cross_encoder_path)]) == 0
    out = capsys.readouterr().out
    assert "Kind: CrossEncoder" in out and "Labels: 1" in out and "Activation: Sigmoid" in out
    assert "Embedding dimension" not in out and "Similarity function" not in out
