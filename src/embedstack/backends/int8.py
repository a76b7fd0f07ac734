"""int8 CPU mode: dynamic int8 quantization of the backbone's linear layers.

Weights are stored as int8 with one scale per output channel; activations are quantized per batch on the fly
(fbgemm kernels). Pooling, Dense and Normalize stay in float32. What it costs and gains on all-MiniLM-L6-v2
is measured by benchmarks/encode_throughput.py and recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import nn

logger = logging.getLogger(__name__)


def quantize_linear_int8(module: nn.Module) -> nn.Module:
    """Return ``module`` with every ``nn.Linear`` replaced by a dynamically quantized int8 linear (CPU only)."""
    engines = torch.backends.quantized.supported_engines
    if "fbgemm" in engines:
        torch.backends.quantized.engine = "fbgemm"
    elif "x86" not in engines and "onednn" not in engines:
        raise RuntimeError(f"This torch build has no x86 int8 kernels (quantized engines: {engines}).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks the quantized tensor API as deprecated
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
