"""A BERT encoder in plain torch, reading a Hugging Face BERT folder without importing transformers.

It gives the same ``last_hidden_state`` as ``transformers.BertModel`` (to float rounding), starts in a
fraction of the time (no transformers import) and runs the query/key/value projections as one matmul. With a
classifier head (a cross-encoder's ``BertForSequenceClassification``) it also gives that model's ``logits``: the
pooler (dense and tanh over the first token) then the classifier. Only the plain architecture is accepted:
:func:`supports` says whether a config qualifies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_ACCEPTED_ARCHITECTURES: dict[str, set[str | None]] = {
    "feature-extraction": {None, "BertModel", "BertForMaskedLM", "BertForPreTraining"},
    "sequence-classification": {"BertForSequenceClassification"},
}


def supports(config: dict[str, Any], task: str = "feature-extraction") -> bool:
    """Whether a config.json describes a plain BERT encoder (for ``task``: or classifier) this module can run."""
    architectures = config.get("architectures") or [None]
    return (
        config.get("model_type") == "bert"
        and architectures[0] in _ACCEPTED_ARCHITECTURES.get(task, set())
        and config.get("hidden_act", "gelu") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder", False)
        and not config.get("add_cross_attention", False)
        and config.get("hidden_size", 0) % max(config.get("num_attention_heads", 1), 1) == 0
    )


@dataclass
class EncoderOutput:
    """What :class:`NativeBert` returns, named as transformers names it."""

    last_hidden_state: torch.Tensor
    logits: torch.Tensor | None = None  # (batch, labels), with a classifier head


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        batch, seq, hidden = x.shape  # (batch, seq, hidden)
        q, k, v = self.qkv(x).view(batch, seq, 3, self.heads, hidden // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)  # (batch, heads, seq, head_dim)
        context = context.transpose(1, 2).reshape(batch, seq, hidden)
        x = self.attention_norm(self.attention_out(context) + x)
        return self.output_norm(self.output(F.gelu(self.intermediate(x))) + x)


class NativeBert(nn.Module):
    """``BertModel`` without the pooler: embeddings, then ``num_hidden_layers`` encoder layers.

    With ``num_labels``, ``BertForSequenceClassification``: the pooler and a classifier over the first token.
    """

    def __init__(self, config: dict[str, Any], num_labels: int | None = None) -> None:
        super().__init__()
        self.config = config
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(config.get("type_vocab_size", 2), hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(hidden, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )
        self.pooler: nn.Linear | None = nn.Linear(hidden, hidden) if num_labels else None
        self.classifier: nn.Linear | None = nn.Linear(hidden, num_labels) if num_labels else None

    @classmethod
    def from_folder(cls, folder: str | Path, *, classifier: bool = False) -> NativeBert:
        """Build from ``config.json`` and ``model.safetensors`` (Hugging Face BERT names).

        Raises:
            KeyError: A tensor is missing (with ``classifier``: the folder has no trained classifier head).
        """
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "model.safetensors"))
        num_labels = int(weights["classifier.weight"].shape[0]) if classifier else None
        model = cls(config, num_labels)  # (a meta-device build would import torch._dynamo: seconds of start-up)
        state = _from_hf_names(weights, config["num_hidden_layers"], classifier=classifier)
        model.load_state_dict(state, strict=True, assign=True)
        return model.eval()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> EncoderOutput:
        """The last hidden state, (batch, seq, hidden), for padded ``input_ids``."""
        seq = input_ids.shape[1]
        positions = torch.arange(seq, device=input_ids.device)
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(types) + self.position_embeddings(positions)
        x = self.embedding_norm(x)  # (batch, seq, hidden)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        key_mask = attention_mask.bool()[:, None, None, :]  # (batch, 1, 1, seq): which keys to attend to
        for layer in self.layers:
            x = layer(x, key_mask)
        if self.pooler is None or self.classifier is None:
            return EncoderOutput(last_hidden_state=x)
        logits = self.classifier(torch.tanh(self.pooler(x[:, 0])))  # (dropout is off in inference)
        return EncoderOutput(last_hidden_state=x, logits=logits)


def _from_hf_names(
    weights: dict[str, torch.Tensor], layers: int, *, classifier: bool = False
) -> dict[str, torch.Tensor]:
    """Hugging Face BertModel tensor names -> ours (the three attention projections concatenated).

    With ``classifier``, also ``BertForSequenceClassification``'s pooler and classifier.
    """
    weights = {key.removeprefix("bert."): value for key, value in weights.items()}
    state = {
        "word_embeddings.weight": weights["embeddings.word_embeddings.weight"],
        "position_embeddings.weight": weights["embeddings.position_embeddings.weight"],
        "token_type_embeddings.weight": weights["embeddings.token_type_embeddings.weight"],
        "embedding_norm.weight": weights["embeddings.LayerNorm.weight"],
        "embedding_norm.bias": weights["embeddings.LayerNorm.bias"],
    }
    for i in range(layers):
        hf, ours = f"encoder.layer.{i}.", f"layers.{i}."
        for part in ("weight", "bias"):
            state[ours + f"qkv.{part}"] = torch.cat(
                [weights[hf + f"attention.self.{name}.{part}"] for name in ("query", "key", "value")]
            )
            state[ours + f"attention_out.{part}"] = weights[hf + f"attention.output.dense.{part}"]
            state[ours + f"attention_norm.{part}"] = weights[hf + f"attention.output.LayerNorm.{part}"]
            state[ours + f"intermediate.{part}"] = weights[hf + f"intermediate.dense.{part}"]
            state[ours + f"output.{part}"] = weights[hf + f"output.dense.{part}"]
            state[ours + f"output_norm.{part}"] = weights[hf + f"output.LayerNorm.{part}"]
    if classifier:
        for part in ("weight", "bias"):
            state[f"pooler.{part}"] = weights[f"pooler.dense.{part}"]
            state[f"classifier.{part}"] = weights[f"classifier.{part}"]
    return state
