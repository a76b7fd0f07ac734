"""GPU checks: run only where CUDA is present (skipped on CPU-only machines and CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import short_texts

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_fp32_on_gpu_matches_reference(minilm_path):
    from sentence_transformers import SentenceTransformer as Reference

    from embedstack import SentenceTransformer

    texts = short_texts()
    ours = SentenceTransformer(str(minilm_path), device="cuda").encode(texts)
    theirs = Reference(str(minilm_path), device="cuda").encode(texts)
    assert np.abs(ours - theirs).max() <= 1e-4


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_quality(minilm_path, dtype):
    from embedstack import SentenceTransformer

    texts = short_texts()
    full = SentenceTransformer(str(minilm_path), device="cuda").encode(texts)
    half_model = SentenceTransformer(str(minilm_path), device="cuda", model_kwargs={"dtype": dtype})
    assert half_model.dtype == dtype
    half = half_model.encode(texts)
    assert half.dtype == np.float32 if dtype == torch.bfloat16 else half.dtype in (np.float16, np.float32)
    cosine = (full * half.astype(np.float32)).sum(1)
    assert cosine.min() > 0.995


def test_auto_on_a_gpu_takes_torch_and_measures_nothing(minilm_path):
    from embedstack import SentenceTransformer

    model = SentenceTransformer(str(minilm_path), device="cuda", backend="auto")
    assert model.get_backend() == "torch" and model.backend_choice is None and model.device.type == "cuda"
