"""SparseAutoEncoder: a dense sentence embedding into a wide vector with only its top k values kept (CSR).

The head of Contrastive Sparse Representation models ("Beyond Matryoshka: Revisiting Sparse Coding for Adaptive
Representation", https://huggingface.co/papers/2503.01776): a tied-weight autoencoder with top-k activation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from embedstack.errors import ModelFormatError
from embedstack.modules.base import (
    WEIGHTS_PICKLE,
    WEIGHTS_SAFETENSORS,
    Module,
    _load_state_dict_checked,
    module_dir,
    read_feature,
)
from embedstack.registry import ST, register_module

NAME = "SparseAutoEncoder"
DECODER_KEY = "decoder.linear.weight"  # the tied weight's name in sentence-transformers' files


def _check_int(key: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{NAME} {key} must be an int >= {minimum}, got {value!r}.")


@register_module(
    f"{ST}.sparse_encoder.modules.sparse_auto_encoder.{NAME}",
    aliases=(
        f"{ST}.sparse_encoder.models.{NAME}",
        f"{ST}.sparse_encoder.models.{NAME}.{NAME}",
        f"{ST}.sparse_encoder.modules.{NAME}",
    ),
    example=lambda: SparseAutoEncoder(input_dim=32, hidden_dim=64, k=4, k_aux=16),
)
class SparseAutoEncoder(Module):
    """``relu(top_k(W (x - pre_bias) + latent_bias))``: a (batch, hidden_dim) vector with at most ``k`` non-zeros.

    Under ``torch.inference_mode`` (how embedstack encodes) only ``sentence_embedding`` is written. Otherwise the
    training outputs of sentence-transformers are written too (the 4k latents, the auxiliary latents and the
    reconstructions), and in training mode with gradients the dead-neuron statistics are updated.

    Args:
        input_dim: Width of the input embedding.
        hidden_dim: Width of the sparse output.
        k: Values kept per row (``max_active_dims`` in ``forward`` overrides it).
        k_aux: Values kept for the auxiliary loss (0 or None: none).
        normalize: Standardize each input (mean 0, std 1) before encoding.
        dead_threshold: Steps without activation after which a latent counts as dead (for the auxiliary loss).

    Example:
        >>> sae = SparseAutoEncoder(input_dim=4, hidden_dim=16, k=2)
        >>> with torch.inference_mode():
        ...     out = sae({"sentence_embedding": torch.randn(3, 4)})["sentence_embedding"]
        >>> out.shape, bool(((out != 0).sum(dim=1) <= 2).all())
        (torch.Size([3, 16]), True)
    """

    config_keys = ["input_dim", "hidden_dim", "k", "k_aux", "normalize", "dead_threshold"]
    forward_kwargs = {"max_active_dims"}

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 512,
        k: int = 8,
        k_aux: int | None = 512,
        normalize: bool = False,
        dead_threshold: int | float = 30,
    ) -> None:
        super().__init__()
        _check_int("input_dim", input_dim, 1)
        _check_int("hidden_dim", hidden_dim, 1)
        _check_int("k", k, 1)
        _check_int("k_aux", k_aux, 0, optional=True)
        if k > hidden_dim:
            raise ValueError(f"{NAME} k must be at most hidden_dim ({hidden_dim}), got {k}.")
        if not isinstance(normalize, bool):
            raise ValueError(f"{NAME} normalize must be true or false, got {normalize!r}.")
        if isinstance(dead_threshold, bool) or not isinstance(dead_threshold, (int, float)):
            raise ValueError(f"{NAME} dead_threshold must be a number, got {dead_threshold!r}.")
        self.input_dim, self.hidden_dim, self.k, self.k_aux = input_dim, hidden_dim, k, k_aux
        self.normalize, self.dead_threshold = normalize, dead_threshold
        self.pre_bias = nn.Parameter(torch.zeros(input_dim))
        self.encoder = nn.Linear(input_dim, hidden_dim, bias=False)  # decoding uses its transpose (tied weights)
        self.latent_bias = nn.Parameter(torch.zeros(hidden_dim))
        self.stats_last_nonzero: torch.Tensor
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))

    def encode_pre_act(self, x: torch.Tensor) -> torch.Tensor:
        """The latents before top-k: (batch, input_dim) -> (batch, hidden_dim)."""
        return F.linear(x - self.pre_bias, self.encoder.weight, self.latent_bias)

    def prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``x`` standardized per row when ``normalize`` (with the mean and std to undo it), else as it is."""
        if not self.normalize:
            return x, {}
        mu = x.mean(dim=-1, keepdim=True)
        x = x - mu
        std = x.std(dim=-1, keepdim=True)
        return x / (std + 1e-5), {"mu": mu, "std": std}

    def top_k(
        self, x: torch.Tensor, k: int | None = None, compute_aux: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The top-``k`` latents of ``x`` (relu'd, zero elsewhere) and, with ``compute_aux``, the auxiliary ones."""
        topk = torch.topk(x, k=min(self.k if k is None else k, x.shape[-1]), dim=-1)
        latents_k = F.relu(torch.zeros_like(x).scatter_(-1, topk.indices, topk.values))
        if self.training and torch.is_grad_enabled():
            hits = torch.zeros_like(self.stats_last_nonzero)
            hits.scatter_add_(0, topk.indices.reshape(-1), (topk.values > 1e-5).to(hits.dtype).reshape(-1))
            self.stats_last_nonzero *= 1 - hits.clamp(max=1)
            self.stats_last_nonzero += 1
        if not (self.k_aux and compute_aux):
            return latents_k, None
        dead = x * (self.stats_last_nonzero > self.dead_threshold)
        aux = torch.topk(dead, k=min(self.k_aux, x.shape[-1]))
        return latents_k, F.relu(torch.zeros_like(x).scatter_(-1, aux.indices, aux.values))

    def decode(self, latents: torch.Tensor, info: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The reconstruction (batch, input_dim), unstandardized with ``info`` when ``normalize``."""
        out = F.linear(latents, self.encoder.weight.t()) + self.pre_bias
        if self.normalize:
            if info is None:
                raise ValueError(f"{NAME}.decode needs the info from prepare() when normalize is true.")
            out = out * info["std"] + info["mu"]
        return out

    def forward(self, features: dict[str, Any], max_active_dims: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Write ``sentence_embedding`` (batch, hidden_dim): the top ``max_active_dims`` (default ``k``) latents."""
        k = max_active_dims if max_active_dims is not None else self.k
        _check_int("max_active_dims", k, 1)
        x = read_feature(features, "sentence_embedding", NAME)  # (batch, input_dim)
        prepared, info = self.prepare(x)
        latents_pre_act = self.encode_pre_act(prepared)
        if torch.is_inference_mode_enabled():  # encoding: no training outputs
            features["sentence_embedding"] = self.top_k(latents_pre_act, k, compute_aux=False)[0]
            return features
        features.update(self._training_outputs(x, latents_pre_act, k, info))
        return features

    def _training_outputs(
        self, x: torch.Tensor, latents_pre_act: torch.Tensor, k: int, info: dict[str, torch.Tensor]
    ) -> dict[str, Any]:
        latents_k, latents_auxk = self.top_k(latents_pre_act, k)
        latents_4k, _ = self.top_k(latents_pre_act, 4 * k)
        recons_k = self.decode(latents_k, info)
        recons_aux = None if latents_auxk is None else F.linear(latents_auxk, self.encoder.weight.t()) + self.pre_bias
        decoder_bias: torch.Tensor = self.pre_bias
        if self.normalize:
            decoder_bias = decoder_bias * info["std"]
            recons_aux = None if recons_aux is None else recons_aux * info["std"]
        return {
            "sentence_embedding_backbone": x,
            "sentence_embedding_encoded": latents_pre_act,
            "sentence_embedding_encoded_4k": latents_4k,
            "auxiliary_embedding": latents_auxk,
            "decoded_embedding_k": recons_k,
            "decoded_embedding_4k": self.decode(latents_4k, info),
            "decoded_embedding_aux": recons_aux,
            "decoded_embedding_k_pre_bias": recons_k - decoder_bias,
            "sentence_embedding": latents_k,
        }

    def get_embedding_dimension(self) -> int:
        """``hidden_dim`` (of which at most ``k`` values per row are non-zero)."""
        return self.hidden_dim

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write ``config.json`` and the weights, the tied weight named as sentence-transformers names it."""
        self.save_config(output_path)
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        if safe_serialization:
            state[DECODER_KEY] = state.pop("encoder.weight")
            save_file(state, str(Path(output_path) / WEIGHTS_SAFETENSORS), metadata={"format": "pt"})
        else:
            torch.save({**state, DECODER_KEY: state["encoder.weight"]}, Path(output_path) / WEIGHTS_PICKLE)

    @classmethod
    def load(cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", **kwargs: Any) -> SparseAutoEncoder:
        """Build the module from ``config.json`` (invalid values raise ModelFormatError) and load its weights."""
        folder = module_dir(model_name_or_path, subfolder)
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        try:
            module = cls(**config)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{folder / cls.config_file_name} holds invalid {NAME} settings: {exc}") from None
        state = cls.load_torch_weights(folder)
        tied = state.pop(DECODER_KEY, None)
        if tied is not None:
            state.setdefault("encoder.weight", tied)
        _load_state_dict_checked(module, state, folder)
        return module
