"""long_inputs: pool, split and late chunking, on a tiny BERT (window 24) and on all-MiniLM-L6-v2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from embedstack import SentenceTransformer
from embedstack.chunking import ChunkEmbeddings, LongInputs, flatten_chunks
from embedstack.cli import main
from embedstack.modules import Normalize, Pooling, Transformer

# Words the MiniLM vocabulary holds whole, so that every word is one token and windows cut between words.
WORDS = "the cat sat on a mat and the dog ran to the park while birds sang in old green trees".split()
SHORT = ["a short text", "the dog ran to the park", ""]


def long_text(words: int, offset: int = 0) -> str:
    return " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(words))


@pytest.fixture(scope="module")
def model(tiny_bert_path):
    transformer = Transformer(str(tiny_bert_path), max_seq_length=24)
    return SentenceTransformer(modules=[transformer, Pooling(32), Normalize()], device="cpu")


def test_short_inputs_give_exactly_the_plain_vectors(model):
    plain = model.encode(SHORT)
    for mode in ("pool", "split"):
        out = model.encode(SHORT, long_inputs=mode)
        rows = np.stack([item.embeddings[0] for item in out]) if mode == "split" else out
        np.testing.assert_array_equal(rows, plain)
    chunks = model.encode(SHORT, long_inputs="split")
    assert [item.spans.tolist() for item in chunks] == [[[0, len(text)]] for text in SHORT]
    mixed = model.encode([*SHORT, long_text(100)], long_inputs="pool")  # other batches, same rows
    np.testing.assert_allclose(mixed[:3], plain, atol=1e-6)


def test_split_chunks_cover_the_text_and_each_is_the_vector_of_its_window(model):
    text = long_text(60)  # 60 tokens, window 22 (24 less [CLS] and [SEP])
    chunks = model.encode(text, long_inputs=LongInputs("split", overlap=4))
    assert isinstance(chunks, ChunkEmbeddings) and len(chunks) == 4  # windows 0-22, 18-40, 36-58, 54-60
    spans = chunks.spans
    assert spans[0, 0] == 0 and spans[-1, 1] == len(text)
    assert all(spans[i + 1, 0] <= spans[i, 1] for i in range(len(spans) - 1))  # no character left out
    for vector, (start, end) in chunks:
        piece = text[start:end].strip()
        np.testing.assert_allclose(vector, model.encode(piece), atol=1e-5)
    assert [len(piece.split()) for piece in chunks.texts(text)] == [22, 22, 22, 6]


def test_token_windows_with_overlap():
    from embedstack.chunking.tokens import token_windows

    assert token_windows(60, 22, 4) == [(0, 22), (18, 40), (36, 58), (54, 60)]
    assert token_windows(5, 22, 4) == [(0, 5)]
    assert token_windows(44, 22, 0) == [(0, 22), (22, 44)]


def test_pool_pools_the_chunks_by_token_count_or_max(model):
    text = long_text(50)
    options = {"overlap": 0}
    chunks = model.encode(text, long_inputs=LongInputs("split", **options))
    weights = np.array([min(22, 50 - 22 * i) for i in range(len(chunks))], dtype=np.float64)
    mean = (chunks.embeddings * weights[:, None]).sum(0) / weights.sum()
    expected = mean / np.linalg.norm(mean)  # the model ends with Normalize: pooled vectors are normalized again
    pooled = model.encode(text, long_inputs=LongInputs("pool", **options))
    np.testing.assert_allclose(pooled, expected, atol=1e-6)
    assert abs(np.linalg.norm(pooled) - 1) < 1e-6
    maxed = chunks.embeddings.max(0)
    np.testing.assert_allclose(
        model.encode(text, long_inputs=LongInputs("pool", pooling="max", **options)),
        maxed / np.linalg.norm(maxed),
        atol=1e-6,
    )
    assert not np.allclose(pooled, model.encode(text))  # truncation sees only the first window


def test_truncate_is_still_the_default_and_reported(model, caplog):
    with caplog.at_level("WARNING", logger="embedstack"):
        np.testing.assert_array_equal(
            model.encode([long_text(50)], long_inputs="truncate"), model.encode([long_text(50)])
        )
    assert "1 of 1 inputs were longer than max_seq_length=24" in caplog.text


def test_encode_iter_and_precision_follow_the_mode(model):
    texts = [long_text(70, i) for i in range(5)] + SHORT
    np.testing.assert_allclose(
        np.stack(list(model.encode_iter(texts, long_inputs="pool", window_size=3))),
        model.encode(texts, long_inputs="pool"),
        atol=1e-6,
    )
    streamed = list(model.encode_iter(texts, long_inputs="split", window_size=4))
    assert [len(item) for item in streamed] == [len(item) for item in model.encode(texts, long_inputs="split")]
    binary = model.encode(texts, long_inputs="split", precision="binary")
    assert binary[0].embeddings.dtype == np.int8 and binary[0].embeddings.shape[1] == 4
    vectors, owners, spans = flatten_chunks(streamed)
    assert len(vectors) == len(owners) == len(spans) == sum(len(item) for item in streamed)


def test_late_chunking_of_a_short_document_is_plain_encode(minilm):
    text = "Late chunking embeds the whole document first. Then it pools the tokens of each chunk."
    late = minilm.encode([text], long_inputs=LongInputs("late", spans=[[(0, len(text))]]))
    np.testing.assert_array_equal(late[0].embeddings[0], minilm.encode(text))
    sentences = minilm.encode(text, long_inputs=LongInputs("late", boundaries="sentences"))
    assert sentences.spans.tolist() == [[0, 47], [47, len(text)]]
    # Each sentence's vector saw the other sentence: it differs from the sentence encoded alone.
    alone = minilm.encode(sentences.texts(text))
    assert not np.allclose(sentences.embeddings, alone, atol=1e-3)
    assert (np.sum(sentences.embeddings * alone, axis=1) > 0.7).all()  # still about the same thing


def test_late_chunking_reads_past_max_seq_length_and_in_windows(model):
    text = long_text(90)  # tiny BERT: max_seq_length 24, 128 positions
    one_pass = model.encode(text, long_inputs=LongInputs("late", late_window=128))
    assert len(one_pass) == 5 and one_pass.spans[-1, 1] == len(text)  # 90 tokens in chunks of 22
    windows = model.encode(text, long_inputs=LongInputs("late", late_window=40, late_overlap=10))
    assert windows.spans.tolist() == one_pass.spans.tolist()
    cosine = np.sum(windows.embeddings * one_pass.embeddings, axis=1)
    assert (cosine > 0.5).all() and not np.allclose(windows.embeddings, one_pass.embeddings)
    # A window covering the whole document is one pass: the same vectors.
    same = model.encode(text, long_inputs=LongInputs("late", late_window=100, late_overlap=10))
    np.testing.assert_allclose(same.embeddings, one_pass.embeddings, atol=1e-6)
    spans = [[(0, 20), (20, len(text))]]
    given = model.encode([text], long_inputs=LongInputs("late", spans=spans, late_window=128))[0]
    assert given.spans.tolist() == [[0, 20], [20, len(text)]]


def test_long_input_errors_say_what_to_do(tiny_bert_path, model):
    cls_model = SentenceTransformer(
        modules=[Transformer(str(tiny_bert_path), max_seq_length=24), Pooling(32, pooling_mode="cls")], device="cpu"
    )
    with pytest.raises(ValueError, match="Pooling with mode mean, max or mean_sqrt_len_tokens.*Pooling\\(cls\\)"):
        cls_model.encode("text", long_inputs="late")
    with pytest.raises(ValueError, match="long_inputs mode 'splits' is not one of .* Did you mean: split"):
        model.encode("text", long_inputs="splits")
    with pytest.raises(ValueError, match="input 1 is a tuple"):
        model.encode(["a", ("b", "c")], long_inputs="pool")
    with pytest.raises(ValueError, match="spans has 1 lists of spans for 2 inputs"):
        model.encode(["a", "b"], long_inputs=LongInputs("late", spans=[[(0, 1)]]))
    with pytest.raises(ValueError, match="Chunk 1 \\(1, 1\\) of input 0 holds no token"):
        model.encode(["a b"], long_inputs=LongInputs("late", spans=[[(0, 1), (1, 1), (1, 3)]]))


def test_cli_long_inputs(tmp_path, capsys):
    text = "Paris is the capital of France. " * 60  # about 480 tokens: two windows of MiniLM
    source = tmp_path / "in.txt"
    source.write_text(text + "\nshort\n")
    out = tmp_path / "out.jsonl"
    assert main(["encode", "-i", str(source), "-o", str(out), "--long-inputs", "split", "--no-progress"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(row["chunks"]) for row in rows] == [2, 1]  # 420 text tokens in windows of 254 sharing 32
    assert rows[0]["chunks"][0]["start"] == 0 and rows[0]["chunks"][-1]["end"] == len(text)
    assert main(["encode", "-i", str(source), "-o", str(tmp_path / "x.npy"), "--long-inputs", "late"]) == 2
    assert "write them to .jsonl" in capsys.readouterr().err
    assert main(["encode", "-i", str(source), "-o", str(tmp_path / "c.npy"), "--long-inputs", "pool"]) == 0
    assert np.load(tmp_path / "c.npy").shape == (2, 384)


def test_pool_mode_on_torch_tensors_and_device_lists_are_refused(model):
    assert isinstance(model.encode(["x", long_text(40)], long_inputs="pool", convert_to_tensor=True), torch.Tensor)
    with pytest.raises(ValueError, match="run in this process"):
        model.encode(["x", "y"], long_inputs="split", device=["cpu", "cpu"])


def test_the_old_mode_names_chunk_and_chunks_still_work_and_warn(model):
    texts = [long_text(50), "short"]
    for old, new in (("chunk", "pool"), ("chunks", "split")):
        with pytest.warns(FutureWarning, match=f"long_inputs mode '{old}' is deprecated; use '{new}'"):
            options = LongInputs(old, overlap=4)
        assert options == LongInputs(new, overlap=4) and options.mode == new
        with pytest.warns(FutureWarning, match=f"use '{new}'"):
            got = model.encode(texts, long_inputs=old)
        expected = model.encode(texts, long_inputs=new)
        if new == "pool":
            np.testing.assert_array_equal(got, expected)
        else:
            assert [item.spans.tolist() for item in got] == [item.spans.tolist() for item in expected]
