"""GPTQ rounding of int8 weights: each rounding error is offset by the weights of the input channels not yet rounded.

Round-to-nearest rounds every weight on its own. GPTQ (Frantar et al., 2022) rounds the input channels of a weight
matrix one at a time and spreads each channel's rounding error over the channels still to come, weighted by how
the calibration activations correlate (the inverse of their Gram matrix ``X^T X``), so the layer's *output* on
such inputs moves as little as possible. It changes which integer each weight gets, not the scales or the file
layout: the kernels and the file are the ones onnxruntime's dynamic quantization writes. It pays most where
steps are coarse: with 7-bit weights on all-MiniLM-L6-v2 the lowest cosine to fp32 goes from 0.9935 to 0.9950 on
the mixed corpus (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np

DAMPING = 0.1  # share of the mean diagonal added to X^T X: calibration sets are small, so keep the inverse tame


def gptq_round(weight: np.ndarray, gram: np.ndarray, scale: np.ndarray, limit: int) -> np.ndarray:
    """The integers for ``weight`` (in, out) at per-output-channel ``scale`` (out,), within [-limit, limit].

    ``gram`` is the (in, in) Gram matrix of the inputs the weight multiplies.
    """
    work = weight.astype(np.float64).copy()
    gram = gram.astype(np.float64).copy()
    dead = np.diag(gram) == 0  # channels never active: their weights do not matter
    gram[dead, dead] = 1.0
    work[dead] = 0.0
    gram += DAMPING * np.mean(np.diag(gram)) * np.eye(len(gram))
    inverse = np.linalg.cholesky(np.linalg.inv(gram)).T  # upper Cholesky factor of the inverse, as in GPTQ
    steps = scale.astype(np.float64)
    rounded = np.empty_like(work)
    for row in range(len(work)):  # one input channel at a time
        rounded[row] = np.clip(np.round(work[row] / steps), -limit, limit)
        error = (work[row] - rounded[row] * steps) / inverse[row, row]  # (out,)
        work[row + 1 :] -= np.outer(inverse[row, row + 1 :], error)
    return rounded.astype(np.int8)
