"""all-MiniLM-L6-v2 through embedstack and through sentence-transformers 6.2, compared in this run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import NON_LATIN, parity_texts, short_texts

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def texts():
    return parity_texts()


# Each library encodes the full corpus to float32 once per module; the tests that compare those default vectors
# (directly, through the quantizer, or against the native backend) share them instead of re-encoding.
@pytest.fixture(scope="module")
def ours_float(texts, minilm):
    return read_only(minilm.encode(texts))


@pytest.fixture(scope="module")
def theirs_float(texts, reference_minilm):
    return read_only(reference_minilm.encode(texts))


@pytest.fixture(scope="module")
def precision_texts(texts, minilm):
    """The corpus for the end-to-end encode(precision=...) calls: a sample of each part of the full corpus with every
    kind of hard case kept (five texts over 256 tokens, every non-Latin text, the empty and whitespace-only strings)."""
    over_256 = [text for text, cut in zip(texts, minilm.truncated(texts)) if cut]
    return texts[:130:10] + over_256[:5] + texts[150:300:5] + NON_LATIN + ["", "   "]


@pytest.fixture(scope="module")
def precision_floats(precision_texts, minilm, reference_minilm):
    return read_only(minilm.encode(precision_texts)), read_only(reference_minilm.encode(precision_texts))


def read_only(array: np.ndarray) -> np.ndarray:
    """Shared vectors: a test that changed them in place would fail instead of corrupting the others."""
    array.setflags(write=False)
    return array


def max_abs_diff(ours, theirs) -> float:
    ours = ours.float().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours, dtype=np.float64)
    theirs = theirs.float().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape
    return float(np.abs(ours.astype(np.float64) - theirs.astype(np.float64)).max()) if ours.size else 0.0


def test_corpus_has_the_hard_cases(texts, minilm):
    assert len(texts) >= 300
    assert "" in texts
    assert minilm.truncated(texts).sum() >= 10  # most joined extracts exceed 256 tokens
    assert any(ord(ch) > 0x3000 for text in texts for ch in text)


def test_precision_corpus_has_the_hard_cases(precision_texts, minilm):
    assert "" in precision_texts and "   " in precision_texts
    assert minilm.truncated(precision_texts).sum() >= 5
    assert set(NON_LATIN) <= set(precision_texts)
    assert any(ord(ch) > 0x3000 for text in precision_texts for ch in text)


def test_default_encode(ours_float, theirs_float):
    ours, theirs = ours_float, theirs_float  # minilm.encode(texts), reference_minilm.encode(texts)
    assert ours.dtype == theirs.dtype == np.float32
    assert max_abs_diff(ours, theirs) <= TOLERANCE


def assert_codes_agree(ours, theirs, precision) -> None:
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    # The float inputs differ by ~1e-7 (our batches differ), which can move a value that sits on a bucket edge by
    # one code; that must stay rare and never exceed one step.
    steps = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    assert steps.max() <= (1 if precision.endswith("int8") else 0) or (steps > 0).mean() < 1e-4
    assert (steps > 0).mean() < 1e-3


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precisions(ours_float, theirs_float, precision_texts, precision_floats, minilm, reference_minilm, precision):
    from sentence_transformers.util.quantization import quantize_embeddings as reference_quantize

    from embedstack.quantization import quantize_embeddings

    # The quantizer itself is exact: the same float input gives the same codes.
    np.testing.assert_array_equal(quantize_embeddings(ours_float, precision), reference_quantize(ours_float, precision))
    # Full corpus: each library's codes for its own float32 vectors (what encode(precision=...) returns, below).
    assert_codes_agree(
        quantize_embeddings(ours_float, precision), reference_quantize(theirs_float, precision), precision
    )
    # End to end through encode(precision=...), on the smaller corpus with the hard cases.
    ours = minilm.encode(precision_texts, precision=precision)
    theirs = reference_minilm.encode(precision_texts, precision=precision)
    assert_codes_agree(ours, theirs, precision)
    # ... and encode(precision=...) is the quantizer applied to encode()'s float32 vectors, in both libraries.
    np.testing.assert_array_equal(ours, quantize_embeddings(precision_floats[0], precision))
    np.testing.assert_array_equal(theirs, reference_quantize(precision_floats[1], precision))


def test_token_embeddings(texts, minilm, reference_minilm):
    ours = minilm.encode(texts, output_value="token_embeddings")
    theirs = reference_minilm.encode(texts, output_value="token_embeddings")
    assert len(ours) == len(theirs)
    assert all(a.shape == b.shape for a, b in zip(ours, theirs))
    assert max(max_abs_diff(a, b) for a, b in zip(ours, theirs)) <= TOLERANCE


OPTION_CASES = {
    "batch_size_5": dict(batch_size=5),
    "convert_to_tensor": dict(convert_to_tensor=True),
    "list_of_tensors": dict(convert_to_numpy=False),
    "normalize": dict(normalize_embeddings=True),
    "truncate_dim": dict(truncate_dim=64),
    "truncate_and_normalize": dict(truncate_dim=32, normalize_embeddings=True),
    "prompt": dict(prompt="query: "),
    "device_cpu": dict(device="cpu"),
    "show_progress_bar": dict(show_progress_bar=True),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_encode_options(case, minilm, reference_minilm):
    texts = short_texts()
    options = OPTION_CASES[case]
    ours, theirs = minilm.encode(texts, **options), reference_minilm.encode(texts, **options)
    assert type(ours) is type(theirs)
    if isinstance(theirs, list):
        ours, theirs = torch.stack(ours), torch.stack(theirs)
    assert max_abs_diff(ours, theirs) <= TOLERANCE


def test_output_value_none_matches(minilm, reference_minilm):
    texts = short_texts()[:10]
    ours = minilm.encode(texts, output_value=None)
    theirs = reference_minilm.encode(texts, output_value=None)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert set(a) == set(b)
        for key in ("sentence_embedding", "token_embeddings", "input_ids", "attention_mask"):
            assert max_abs_diff(a[key], b[key]) <= TOLERANCE


def test_single_string_and_empty_list(minilm, reference_minilm):
    ours, theirs = minilm.encode("A single sentence."), reference_minilm.encode("A single sentence.")
    assert ours.shape == theirs.shape == (384,)
    assert max_abs_diff(ours, theirs) <= TOLERANCE
    assert minilm.encode([]).shape == reference_minilm.encode([]).shape
    assert minilm.encode([], convert_to_tensor=True).shape == reference_minilm.encode([], convert_to_tensor=True).shape


def test_text_pairs(minilm, reference_minilm):
    pairs = [("A man is eating.", "A man eats food."), ("The sky is blue.", "It is raining.")]
    assert max_abs_diff(minilm.encode(pairs), reference_minilm.encode(pairs)) <= TOLERANCE


def test_prompt_names_and_default_prompt(minilm_path):
    from sentence_transformers import SentenceTransformer as Reference

    from embedstack import SentenceTransformer

    prompts = {"query": "query: ", "passage": "passage: ", "classify": "Classify this: "}
    ours = SentenceTransformer(str(minilm_path), prompts=prompts, default_prompt_name="classify", device="cpu")
    theirs = Reference(str(minilm_path), prompts=prompts, default_prompt_name="classify", device="cpu")
    texts = short_texts()[:12]
    for call in (
        lambda m: m.encode(texts),
        lambda m: m.encode(texts, prompt_name="query"),
        lambda m: m.encode(texts, prompt=""),
        lambda m: m.encode_query(texts),
        lambda m: m.encode_document(texts),
    ):
        assert max_abs_diff(call(ours), call(theirs)) <= TOLERANCE
    # the default prompt changes the vectors, so the cases above are not trivially equal
    assert max_abs_diff(ours.encode(texts), ours.encode(texts, prompt="")) > 1e-3


def test_similarity_functions(minilm, reference_minilm):
    embeddings = minilm.encode(short_texts()[:8])
    for name in ("cosine", "dot", "euclidean", "manhattan"):
        minilm.similarity_fn_name = name
        reference_minilm.similarity_fn_name = name
        try:
            assert (
                max_abs_diff(
                    minilm.similarity(embeddings, embeddings), reference_minilm.similarity(embeddings, embeddings)
                )
                <= 1e-5
            )
            pairwise_ours = minilm.similarity_pairwise(embeddings[:4], embeddings[4:])
            pairwise_theirs = reference_minilm.similarity_pairwise(embeddings[:4], embeddings[4:])
            assert max_abs_diff(pairwise_ours, pairwise_theirs) <= 1e-5
        finally:
            minilm.similarity_fn_name = reference_minilm.similarity_fn_name = "cosine"


def test_properties_match(minilm, reference_minilm):
    assert minilm.get_embedding_dimension() == reference_minilm.get_embedding_dimension() == 384
    assert minilm.max_seq_length == reference_minilm.max_seq_length == 256
    assert repr(minilm) == repr(reference_minilm)
    assert minilm.prompts == reference_minilm.prompts
    assert minilm.similarity_fn_name == reference_minilm.similarity_fn_name


def test_native_backend_matches_reference(texts, minilm_path, reference_minilm, theirs_float):
    from embedstack import SentenceTransformer

    native = SentenceTransformer(str(minilm_path), backend="native", device="cpu")
    assert max_abs_diff(native.encode(texts), theirs_float) <= TOLERANCE  # theirs_float: reference.encode(texts)
    short = short_texts()
    assert (
        max_abs_diff(native.encode(short, prompt="query: "), reference_minilm.encode(short, prompt="query: "))
        <= TOLERANCE
    )
