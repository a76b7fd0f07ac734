"""Helpers of the server tests: real servers on loopback, the texts they send, metrics read back."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx
import numpy as np

from embedstack.evaluation.datasets import sts_benchmark, wikipedia_extracts

ATOL = 1e-5  # server vectors vs model.encode of the same inputs


def short_texts(n: int = 200) -> list[str]:
    """Distinct STS-B sentences."""
    pairs = sts_benchmark("test")
    return list(dict.fromkeys(pairs.sentences1 + pairs.sentences2))[:n]


def long_texts(n: int = 40) -> list[str]:
    """Wikipedia extracts (paragraphs of 30 to 250 tokens)."""
    return wikipedia_extracts(limit=n)


def too_long_texts(n: int = 4) -> list[str]:
    """Texts longer than MiniLM's 256-token window: six Wikipedia extracts each."""
    extracts = wikipedia_extracts(limit=6 * n)
    return [" ".join(extracts[6 * i : 6 * i + 6]) for i in range(n)]


def metric(url: str, name: str, labels: str = "") -> float:
    """The value of one sample on ``/metrics`` (0 when absent); without ``labels``, the sum over its label sets
    (the per-model metrics carry a ``model`` label)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    if labels:
        match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0
    return sum(float(value) for value in re.findall(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.MULTILINE))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def assert_close(got: object, expected: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert float(np.abs(got - expected).max()) <= ATOL
