"""A SparseEncoder on the onnx backend: its MLM exported with the logits per token (pooling stays in torch), the
same sparse vectors as torch, an int8 file under the self-check, and a file of another task refused by name."""

from __future__ import annotations

import pytest
import torch

from embedstack import CrossEncoder, SparseEncoder
from embedstack.errors import ModelFormatError

pytest.importorskip("onnxruntime")
TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.", "a"]


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.to_dense() - b.to_dense()).abs().max())


@pytest.fixture(scope="module")
def exported(mlm_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sparse-onnx") / "model"
    SparseEncoder(str(mlm_path), device="cpu").export_onnx(folder, quantize="int8")
    return folder


def test_the_onnx_export_gives_the_torch_vectors(mlm_path, exported):
    torch_model = SparseEncoder(str(mlm_path), device="cpu")
    onnx_model = SparseEncoder(str(exported), device="cpu", backend="onnx")
    assert onnx_model.get_backend() == "onnx"
    assert max_diff(onnx_model.encode(TEXTS), torch_model.encode(TEXTS)) <= 1e-4
    assert max_diff(onnx_model.encode(TEXTS, max_active_dims=16), torch_model.encode(TEXTS, max_active_dims=16)) <= 1e-4


def test_the_int8_file_passes_its_self_check_and_stays_close(mlm_path, exported):
    int8_file = {"file_name": "onnx/model_qint8_avx512_vnni.onnx"}
    int8 = SparseEncoder(str(exported), device="cpu", backend="onnx", model_kwargs=int8_file)
    assert int8.int8_check is not None and int8.int8_check.passed
    fp32 = SparseEncoder(str(mlm_path), device="cpu").encode(TEXTS).to_dense()
    quantized = int8.encode(TEXTS).to_dense()
    assert torch.nn.functional.cosine_similarity(fp32, quantized).min() >= 0.99


def test_a_plain_mlm_folder_exports_on_the_fly(mlm_path):
    model = SparseEncoder(str(mlm_path), device="cpu", backend="onnx")
    assert max_diff(model.encode(TEXTS), SparseEncoder(str(mlm_path), device="cpu").encode(TEXTS)) <= 1e-4


def test_an_export_of_another_task_is_refused_by_name(cross_encoder_path, exported, tmp_path):
    """A sparse model's folder whose onnx/model.onnx is a classifier's (logits of rank 2, not 3)."""
    import shutil

    CrossEncoder(str(cross_encoder_path), device="cpu").export_onnx(tmp_path / "classifier")
    shutil.copytree(exported, tmp_path / "mixed")
    shutil.copyfile(tmp_path / "classifier" / "onnx" / "model.onnx", tmp_path / "mixed" / "onnx" / "model.onnx")
    with pytest.raises(ModelFormatError, match="rank"):
        SparseEncoder(str(tmp_path / "mixed"), device="cpu", backend="onnx")
