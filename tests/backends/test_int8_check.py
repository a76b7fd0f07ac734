"""The int8 self-check and the int8 kernels chosen where the model runs: an int8 model is compared with fp32 on this
machine before it serves a vector, refused (or, with backend="auto", replaced by fp32) when it falls short, and an
8-bit file runs exactly on every CPU, whatever its int8 kernels."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from embedstack import SentenceTransformer
from embedstack.backends import cpu_features
from embedstack.backends.onnx import OnnxTransformer, inference_session
from embedstack.backends.onnx_quantize import QUANTIZED_FILES
from embedstack.errors import Int8QualityError
from embedstack.modules import Pooling, Transformer
from helpers import outlier_model, short_texts

INT8_FILE = QUANTIZED_FILES["int8"]


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _rewrite_int8_weights(source, target, change, nodes=None):
    """Copy the int8 file ``source`` to ``target`` with ``change(array, input position)`` applied to the weights and
    weight zero points of its MatMulInteger nodes (the first ``nodes`` of them, or all)."""
    model = onnx.load(str(source))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    for node in [node for node in model.graph.node if node.op_type == "MatMulInteger"][:nodes]:
        for position in (1, 3):  # the weight and its zero point
            tensor = initializers[node.input[position]]
            tensor.CopyFrom(numpy_helper.from_array(change(numpy_helper.to_array(tensor), position), tensor.name))
    onnx.save(model, str(target))


def test_an_8_bit_file_gives_the_vectors_of_its_exact_uint8_form_on_this_cpu(minilm_int8, tmp_path):
    """Where the int8 kernels add pairs in 16 bits (x86 without VNNI) they would saturate with 8-bit weights: the
    session runs them as uint8 there. The uint8 form (weights + 128, zero point 128: the same values) runs kernels
    that widen first on every CPU, so both must give the same vectors here, whichever CPU this is."""
    folder = tmp_path / "m"
    shutil.copytree(minilm_int8, folder)
    _rewrite_int8_weights(
        minilm_int8 / "onnx" / INT8_FILE,
        folder / "onnx" / "model_uint8_form.onnx",
        lambda array, _: (array.astype(np.int16) + 128).astype(np.uint8),
    )
    texts = short_texts()
    vectors = {}
    for name in (INT8_FILE, "model_uint8_form.onnx"):
        model = SentenceTransformer(str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": name})
        vectors[name] = model.encode(texts)
    np.testing.assert_allclose(vectors[INT8_FILE], vectors["model_uint8_form.onnx"], atol=1e-5)


@pytest.mark.parametrize("saturates", [True, False])
def test_the_session_widens_8_bit_weights_only_where_int8_pairs_saturate(minilm_int8, monkeypatch, saturates):
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx2"} if saturates else {"avx512_vnni"}))
    monkeypatch.setattr(cpu_features, "is_x86", lambda: True)
    session = inference_session(minilm_int8 / "onnx" / INT8_FILE, "CPUExecutionProvider")
    entry = session.get_session_options().get_session_config_entry("session.x64quantprecision") if saturates else None
    assert entry == ("1" if saturates else None)
    if not saturates:
        with pytest.raises(Exception, match="x64quantprecision"):  # never set where VNNI would be lost for nothing
            session.get_session_options().get_session_config_entry("session.x64quantprecision")


def test_a_damaged_int8_file_is_refused_and_auto_falls_back_to_fp32(minilm_int8, minilm, tmp_path, caplog, capsys):
    from embedstack.cli import main

    folder = tmp_path / "damaged"
    shutil.copytree(minilm_int8, folder)
    rng = np.random.default_rng(0)
    _rewrite_int8_weights(  # the first layer's query weights' signs flipped at random: broken, yet a valid file
        minilm_int8 / "onnx" / INT8_FILE,
        folder / "onnx" / INT8_FILE,
        lambda array, position: (
            array * rng.choice(np.array([-1, 1], dtype=array.dtype), array.shape) if position == 1 else array
        ),
        nodes=1,
    )
    options = {"file_name": INT8_FILE}
    with pytest.raises(Int8QualityError) as refused:
        SentenceTransformer(str(folder), device="cpu", backend="onnx", model_kwargs=options)
    message = str(refused.value)
    assert f"{INT8_FILE} is refused: on this machine its vectors reach only cosine" in message
    assert "below the threshold 0.99" in message and f"CPU: {cpu_features.flag_summary()}" in message
    assert "leave out model_kwargs['file_name']" in message  # the remedy

    with caplog.at_level(logging.WARNING, logger="embedstack"):
        auto = SentenceTransformer(str(folder), device="cpu", backend="auto", model_kwargs=options)
    assert "backend='auto' runs the fp32 model instead" in caplog.text
    assert not auto.int8_check.passed and auto.int8_check.lowest_cosine < 0.99
    assert not getattr(auto[0], "is_int8", False)
    texts = short_texts()
    np.testing.assert_allclose(auto.encode(texts), minilm.encode(texts), atol=1e-5)

    assert main(["encode", "-m", str(folder), "--onnx-file", INT8_FILE, "x"]) == 2
    assert "is refused" in capsys.readouterr().err
    accepted = f"{auto.int8_check.lowest_cosine - 0.01:.3f}"  # the user accepts less
    assert main(["info", str(folder), "--onnx-file", INT8_FILE, "--int8-min-cosine", accepted]) == 0
    assert f"int8: int8 self-check passed: {INT8_FILE} gives lowest cosine" in capsys.readouterr().out


def test_a_good_int8_file_passes_and_info_says_what_the_check_measured(minilm_int8, capsys):
    from embedstack.cli import main

    model = SentenceTransformer(str(minilm_int8), device="cpu", backend="onnx", model_kwargs={"file_name": INT8_FILE})
    check = model.int8_check
    assert isinstance(model[0], OnnxTransformer) and model[0].is_int8
    assert check.passed and check.min_cosine == 0.99 and check.texts == 48 and check.what == INT8_FILE
    assert main(["info", str(minilm_int8), "--onnx-file", INT8_FILE]) == 0
    out = capsys.readouterr().out
    assert f"int8: int8 self-check passed: {INT8_FILE} gives lowest cosine {check.lowest_cosine:.4f}" in out
    fp32 = SentenceTransformer(str(minilm_int8), device="cpu", backend="onnx")
    assert fp32.int8_check is None  # nothing to check on an fp32 file


def test_quantize_refuses_below_min_cosine_and_the_model_stays_fp32(tiny_bert_path, caplog):
    model = outlier_model(tiny_bert_path)  # int8 errors show on it (lowest cosine 0.98-0.99)
    texts = short_texts()
    before = model.encode(texts)
    with caplog.at_level(logging.WARNING, logger="embedstack"), pytest.raises(Int8QualityError, match="stays fp32"):
        model.quantize("int8", min_cosine=0.9999)
    tried = caplog.text.count("int8 self-check FAILED")
    assert tried == (2 if cpu_features.int8_pairs_saturate() else 1)  # the fast recipe, then the exact 8-bit one
    assert isinstance(model[0], Transformer) and model.int8_check is None
    np.testing.assert_array_equal(model.encode(texts), before)
    with pytest.raises(ValueError, match=r"min_cosine must be in \(0, 1\]"):
        model.quantize("int8", min_cosine=1.5)


def test_quantize_takes_the_fast_recipe_for_this_cpu_and_records_its_check(tiny_bert_path):
    model = SentenceTransformer(modules=[Transformer(str(tiny_bert_path)), Pooling(32)], device="cpu")
    texts = short_texts()
    full = model.encode(texts)
    model.quantize("int8", min_cosine=0.9)
    check = model.int8_check
    assert check.passed and check.what == f"the {cpu_features.int8_recipe_for_this_cpu()} int8 recipe"
    assert _cosines(model.encode(texts), full).min() >= 0.9


def test_an_export_whose_int8_file_fails_the_check_writes_nothing(tiny_bert_path, tmp_path):
    model = outlier_model(tiny_bert_path)
    with pytest.raises(Int8QualityError, match="Nothing was written"):
        model.export_onnx(tmp_path / "new", quantize="int8", min_cosine=0.9999)
    assert not (tmp_path / "new").exists() and not list(tmp_path.iterdir())  # no staging folder left either
    model.save(str(tmp_path / "existing"))
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "existing").rglob("*"))
    with pytest.raises(Int8QualityError):
        model.export_onnx(tmp_path / "existing", quantize="int8", min_cosine=0.9999)
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "existing").rglob("*")) == before
