"""Encoding on worker processes (sentence-transformers' multi-process pool): same vectors as encode, in input
order, on two CPU workers; no worker left behind after an error."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

TEXTS = [f"sentence {index} about {topic}" for index, topic in enumerate(["cats", "trains", "rain", "tea"] * 15)]
TEXTS += ["", "a much longer sentence that keeps going for a while to have a different token count"] * 3


def _workers() -> list:
    return [child for child in multiprocessing.active_children() if child.name.startswith("embedstack-")]


def test_a_pool_gives_the_vectors_of_encode_in_order(minilm, minilm_pool):
    expected = minilm.encode(TEXTS)
    pool = minilm_pool  # stopped at the end of the session, where the fixture checks that no worker is left
    assert len(pool["processes"]) == 2 and all(process.is_alive() for process in pool["processes"])
    vectors = minilm.encode(TEXTS, pool=pool, chunk_size=7)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    as_tensor = minilm.encode(TEXTS[:9], pool=pool, convert_to_tensor=True, normalize_embeddings=True)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (9, 384)
    np.testing.assert_allclose(minilm.encode(TEXTS[0], pool=pool), expected[0], atol=1e-5)
    with pytest.raises(RuntimeError, match="UnsupportedModalityError"):
        minilm.encode([{"unknown": 1}, *TEXTS], pool=pool, chunk_size=1)
    # the pool still serves after a failed call, and none of that call's results leak into the next one
    np.testing.assert_allclose(minilm.encode(TEXTS[:5], pool=pool), expected[:5], atol=1e-5)


def test_a_device_list_starts_and_stops_its_own_workers(minilm):
    others = set(_workers())  # e.g. the session's pool
    vectors = minilm.encode(TEXTS, device=["cpu", "cpu"])
    np.testing.assert_allclose(vectors, minilm.encode(TEXTS), atol=1e-5)
    assert set(_workers()) == others
    with pytest.raises(RuntimeError, match="An encode worker failed"):  # one worker is enough to fail
        minilm.encode([*TEXTS, {"unknown": 1}], device=["cpu"])
    assert set(_workers()) == others  # stopped after the error too
