"""Saving a custom module whose save() refuses safe_serialization only when called (a decorator without
functools.wraps hides its signature): both libraries fall back to save(path), and each loads the other's folder.
Compared with sentence-transformers 6.2 in the same run; tolerance: max abs diff 1e-6."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer as Reference
from sentence_transformers.sentence_transformer.modules import Pooling as ReferencePooling
from sentence_transformers.sentence_transformer.modules import Transformer as ReferenceTransformer

from embedstack import SentenceTransformer
from embedstack.modules import Pooling, Transformer

TEXTS = ["a decorated save", "falls back to the path alone"]


def logged(function):
    """A decorator as many codebases write one: no functools.wraps, so the wrapper seems to take any keyword."""

    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)

    return wrapper


class DecoratedScale(torch.nn.Module):
    """A custom module whose save(path) takes no safe_serialization, behind a signature-hiding decorator."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.saves: list[str] = []

    def forward(self, features, **kwargs):
        features["sentence_embedding"] = features["sentence_embedding"] * self.factor
        return features

    @logged
    def save(self, path: str) -> None:
        self.saves.append(path)
        Path(path, "factor.txt").write_text(repr(self.factor))

    @staticmethod
    def load(path: str) -> DecoratedScale:
        return DecoratedScale(float(Path(path, "factor.txt").read_text()))


class BrokenSave(DecoratedScale):
    """A save that fails with a TypeError of its own, which must not be taken for a refused keyword."""

    def save(self, path: str, safe_serialization: bool = True) -> None:
        raise TypeError("factor must be a float, not a str")


def test_a_save_that_refuses_the_keyword_at_the_call_falls_back(tmp_path, tiny_bert_path):
    ours_scale, theirs_scale = DecoratedScale(3.0), DecoratedScale(3.0)
    ours = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32), ours_scale], device="cpu")
    theirs = Reference(
        modules=[ReferenceTransformer(str(tiny_bert_path)), ReferencePooling(32), theirs_scale], device="cpu"
    )
    ours.save(str(tmp_path / "ours"))
    theirs.save(str(tmp_path / "theirs"))
    assert len(ours_scale.saves) == len(theirs_scale.saves) == 1  # the retry without the keyword
    for folder in ("ours", "theirs"):
        entry = json.loads((tmp_path / folder / "modules.json").read_text())[2]
        assert entry["type"].endswith("test_save_fallback.DecoratedScale")
        assert (tmp_path / folder / entry["path"] / "factor.txt").read_text() == "3.0"
    expected = theirs.encode(TEXTS)
    np.testing.assert_allclose(ours.encode(TEXTS), expected, atol=1e-6)
    from_theirs = SentenceTransformer(str(tmp_path / "theirs"), device="cpu", trust_remote_code=True)
    from_ours = Reference(str(tmp_path / "ours"), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(from_theirs.encode(TEXTS), expected, atol=1e-6)
    np.testing.assert_allclose(from_ours.encode(TEXTS), expected, atol=1e-6)


def test_other_type_errors_in_a_save_still_surface(tmp_path, tiny_bert_path):
    """The reference retries on any TypeError (and then fails on the retry); here the module's own error shows."""
    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32), BrokenSave(2.0)], device="cpu")
    with pytest.raises(TypeError, match="factor must be a float"):
        model.save(str(tmp_path / "m"))
