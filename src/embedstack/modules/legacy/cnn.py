"""CNN: 1-D convolutions of several kernel sizes over token embeddings (a legacy module)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from embedstack.modules.base import ModuleWithWeights
from embedstack.registry import ST, register_module


@register_module(f"{ST}.sentence_transformer.modules.cnn.CNN", legacy=True)
class CNN(ModuleWithWeights):
    """Token embeddings -> concatenated outputs of one ``Conv1d`` per kernel size (same sequence length).

    Args:
        in_embedding_dimension: Width of the incoming token embeddings.
        out_channels: Output channels of each convolution.
        kernel_sizes: One convolution per size (odd sizes keep the sequence length).
        stride_sizes: Stride of each convolution (default 1).
    """

    config_keys: list[str] = ["in_embedding_dimension", "out_channels", "kernel_sizes", "stride_sizes"]
    config_file_name: str = "cnn_config.json"
    config_key_renames = {"in_word_embedding_dimension": "in_embedding_dimension"}

    def __init__(
        self,
        in_embedding_dimension: int,
        out_channels: int = 256,
        kernel_sizes: Sequence[int] = (1, 3, 5),
        stride_sizes: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        kernel_sizes = list(kernel_sizes)
        stride_sizes = list(stride_sizes) if stride_sizes is not None else [1] * len(kernel_sizes)
        if len(stride_sizes) != len(kernel_sizes) or not kernel_sizes:
            raise ValueError(
                f"CNN needs one stride per kernel size; got kernel_sizes={kernel_sizes}, stride_sizes={stride_sizes}."
            )
        self.in_embedding_dimension = in_embedding_dimension
        self.out_channels = out_channels
        self.kernel_sizes = kernel_sizes
        self.stride_sizes = stride_sizes
        self.convs = nn.ModuleList(
            nn.Conv1d(in_embedding_dimension, out_channels, kernel, stride=stride, padding=(kernel - 1) // 2)
            for kernel, stride in zip(kernel_sizes, stride_sizes)
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Replace ``token_embeddings`` by the concatenated convolution outputs."""
        channels_first = features["token_embeddings"].transpose(1, -1)  # (batch, dim, seq)
        out = torch.cat([conv(channels_first) for conv in self.convs], 1)  # (batch, convs * out_channels, seq)
        features["token_embeddings"] = out.transpose(1, -1)  # (batch, seq, convs * out_channels)
        return features

    def get_embedding_dimension(self) -> int:
        """Output channels times the number of kernel sizes."""
        return self.out_channels * len(self.kernel_sizes)
