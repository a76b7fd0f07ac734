"""backend="auto" decided by measurement on this machine: the candidates that run the folder exactly, the rule that
never takes a backend slower than torch, and the decision remembered per model, CPU and thread count."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedstack import SentenceTransformer
from embedstack.backends import select
from embedstack.modules.module_io import LoadOptions
from embedstack.modules.transformer.module import Transformer
from helpers import short_texts


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of this test's own."""
    monkeypatch.setenv("EMBEDSTACK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / select.CHOICES_FILE


@pytest.fixture(scope="module")
def exported(tiny_bert_path, tmp_path_factory):
    """The tiny BERT with its ONNX export: torch, native and onnx can all run it."""
    model = SentenceTransformer(str(tiny_bert_path), device="cpu")
    return model.export_onnx(tmp_path_factory.mktemp("auto") / "exported")


@pytest.mark.parametrize(
    ("seconds", "chosen"),
    [
        ({"torch": 1.0, "onnx": 0.80, "native": 0.95}, "onnx"),
        ({"torch": 1.0, "onnx": 0.985, "native": 0.99}, "native"),  # all tied: the one that starts fastest
        ({"torch": 1.0, "onnx": 0.98}, "torch"),  # tied: the reference path
        ({"torch": 1.0, "onnx": 1.30}, "torch"),
        ({"torch": 1.0, "onnx": 0.90, "native": 0.85}, "native"),
        ({"torch": 1.0, "native": 1.02}, "native"),  # slower by less than the noise: starts faster, same speed
        ({"torch": 1.0, "native": 1.10}, "torch"),
        ({"torch": 1.0}, "torch"),  # the others failed the probe
    ],
)
def test_the_rule_takes_the_fastest_and_never_one_slower_than_torch_beyond_noise(seconds, chosen):
    choice = select._decide(seconds)
    assert choice.backend == chosen
    assert seconds[chosen] <= min(seconds.values()) * (1 + select.NOISE)  # within noise of the fastest
    assert seconds[chosen] <= seconds["torch"] * (1 + select.NOISE)  # and so never slower than torch beyond it
    assert choice.reason.startswith(f"{chosen}: ")


def test_auto_measures_every_backend_that_runs_the_folder_and_takes_the_fastest(exported, cache):
    model = SentenceTransformer(str(exported), device="cpu", backend="auto")
    choice = model.backend_choice
    assert set(choice.seconds) == {"torch", "native", "onnx"} and not choice.cached
    assert model.get_backend() == choice.backend == select._decide(choice.seconds).backend
    torch_model = SentenceTransformer(str(exported), device="cpu", backend="torch")
    texts = short_texts()
    np.testing.assert_allclose(model.encode(texts), torch_model.encode(texts), atol=1e-5)  # same vectors, any choice
    records = json.loads(cache.read_text())
    assert len(records) == 1 and next(iter(records.values()))["backend"] == choice.backend


def test_the_decision_is_remembered_and_only_the_chosen_backend_is_built(exported, cache, monkeypatch):
    first = SentenceTransformer(str(exported), device="cpu", backend="auto").backend_choice

    def no_probe(modules):
        raise AssertionError(f"probed again: {list(modules)}")

    monkeypatch.setattr(select, "probe", no_probe)
    again = SentenceTransformer(str(exported), device="cpu", backend="auto")
    assert again.backend_choice.cached and again.get_backend() == first.backend
    assert again.backend_choice.seconds == first.seconds
    assert "remembered from an earlier probe" in again.backend_choice.summary()


@pytest.mark.parametrize("change", ["cpu", "threads", "file"])
def test_another_cpu_thread_count_or_model_file_is_measured_again(exported, cache, monkeypatch, tmp_path, change):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(exported, folder)
    SentenceTransformer(str(folder), device="cpu", backend="auto")
    if change == "cpu":
        monkeypatch.setattr(select, "flag_summary", lambda: "avx2, avx512f, avx512_vnni, amx_int8")
    elif change == "threads":
        cores = select.available_cpus()
        monkeypatch.setattr(select, "available_cpus", lambda: cores + 1)
    else:
        (folder / "onnx" / "model.onnx").write_bytes((folder / "onnx" / "model.onnx").read_bytes())  # a new mtime
    again = SentenceTransformer(str(folder), device="cpu", backend="auto")
    assert not again.backend_choice.cached
    assert len(json.loads(cache.read_text())) == 2


def test_a_damaged_cache_file_is_measured_over(exported, cache):
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json", encoding="utf-8")
    model = SentenceTransformer(str(exported), device="cpu", backend="auto")
    assert not model.backend_choice.cached
    assert len(json.loads(cache.read_text())) == 1


def test_an_unwritable_cache_folder_still_loads(exported, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("EMBEDSTACK_CACHE", str(blocker / "cache"))  # cannot be created
    model = SentenceTransformer(str(exported), device="cpu", backend="auto")
    assert model.backend_choice is not None and not model.backend_choice.cached


def test_auto_for_a_gpu_takes_torch_without_measuring(exported, cache, monkeypatch):
    def no_probe(modules):
        raise AssertionError("measured on the CPU for a GPU model")

    monkeypatch.setattr(select, "probe", no_probe)
    module = Transformer.load(str(exported), backend="auto", load_options=LoadOptions(backend="auto", device="cuda:0"))
    assert isinstance(module, Transformer) and getattr(module, "backend_choice", None) is None


def test_a_backend_that_fails_the_probe_is_left_out(exported, cache, monkeypatch, caplog):
    from embedstack.backends import onnx as onnx_backend

    def broken(self, features, **kwargs):
        raise RuntimeError("this backend is broken")

    monkeypatch.setattr(onnx_backend.OnnxTransformer, "forward", broken)
    model = SentenceTransformer(str(exported), device="cpu", backend="auto")
    assert set(model.backend_choice.seconds) == {"torch", "native"}
    assert "onnx failed on the probe and is left out" in caplog.text
