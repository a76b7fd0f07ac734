"""Quantized precisions on worker processes: the ranges come from the whole input, as in one process, so a pool
gives the int8 / uint8 output of one process bit for bit, and a chunk of one input works."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import short_texts

pytestmark = pytest.mark.slow


def test_a_pool_gives_the_quantized_output_of_one_process(minilm, minilm_pool, reference_minilm):
    texts = short_texts()[:200]
    single = {precision: minilm.encode(texts, precision=precision) for precision in ("int8", "uint8")}
    for precision, expected in single.items():
        pooled = minilm.encode(texts, pool=minilm_pool, precision=precision, chunk_size=37)
        assert pooled.dtype == expected.dtype and np.array_equal(pooled, expected), precision
    # a chunk of one input: the worker returns floats, the ranges come from all four (one-row passes differ from a
    # four-row pass in the last float bits, so a value on a bucket's edge may land one bucket over)
    one_each = minilm.encode(texts[:4], pool=minilm_pool, precision="int8", chunk_size=1)
    assert np.abs(one_each.astype(int) - minilm.encode(texts[:4], precision="int8").astype(int)).max() <= 1
    # and one process agrees with sentence-transformers 6.2 (its float vectors differ in the last bits, so a value
    # on a bucket's edge may land one bucket over)
    reference = reference_minilm.encode(texts, precision="int8")
    assert np.abs(single["int8"].astype(int) - reference.astype(int)).max() <= 1
