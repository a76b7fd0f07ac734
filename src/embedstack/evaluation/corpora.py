"""The benchmark corpora (Wikipedia extracts, a mixed corpus, STS-B sentences), built from the data packages."""

from __future__ import annotations

import random

from embedstack.evaluation.datasets import sts_benchmark, wikipedia_extracts


def wiki(n: int = 2000) -> list[str]:
    """The first ``n`` English Wikipedia extracts."""
    return wikipedia_extracts(limit=n)


def mixed(n: int = 2000, seed: int = 0) -> list[str]:
    """Short queries, single sentences and paragraphs, shuffled: a third each."""
    sts = sts_benchmark("train")
    sentences = list(dict.fromkeys(sts.sentences1 + sts.sentences2))
    rng = random.Random(seed)
    queries = [" ".join(s.split()[: rng.randint(2, 5)]).rstrip(".,") for s in rng.sample(sentences, n // 3)]
    singles = rng.sample(sentences, n // 3)
    paragraphs = wikipedia_extracts(limit=4000)[2000 : 2000 + n - len(queries) - len(singles)]
    texts = queries + singles + paragraphs
    rng.shuffle(texts)
    return texts


def sts_test() -> list[str]:
    """All STS Benchmark test sentences (both columns)."""
    pairs = sts_benchmark("test")
    return pairs.sentences1 + pairs.sentences2


CORPORA = {"wiki": wiki, "mixed": mixed, "sts": sts_test}
