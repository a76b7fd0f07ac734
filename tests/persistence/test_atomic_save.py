"""Saves are atomic: an interrupted save leaves the previous folder intact."""

from __future__ import annotations

import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.modules import Dense, Pooling, Transformer
from embedstack.persistence.atomic import FolderInUseError


@pytest.fixture
def model(tiny_bert_path):
    return SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32), Dense(32, 8)], device="cpu")


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_interrupted_save_keeps_the_previous_folder(model, tmp_path, monkeypatch):
    target = tmp_path / "model"
    model.save(str(target))
    before = snapshot(target)
    torch_dense = model[2]
    torch_dense.linear.weight.data.add_(1.0)  # the new save would differ

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut half-way through the save")

    monkeypatch.setattr(type(torch_dense), "save_torch_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        model.save(str(target))
    assert snapshot(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind
    reloaded = SentenceTransformer(str(target), device="cpu")
    assert reloaded.encode(["still loads"]).shape == (1, 8)


def test_save_over_the_folder_the_model_was_loaded_from(model, tmp_path):
    model.save(str(tmp_path / "m"))
    loaded = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    expected = loaded.encode(["same vectors"])
    loaded.save(str(tmp_path / "m"))
    np.testing.assert_array_equal(
        SentenceTransformer(str(tmp_path / "m"), device="cpu").encode(["same vectors"]), expected
    )


def test_refuses_to_replace_a_folder_that_is_not_a_model(model, tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(FolderInUseError, match="does not hold a model"):
        model.save(str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "precious"
