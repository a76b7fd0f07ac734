"""The native BERT's inference forward as a TorchScript graph: no Python, and so no GIL, between its operations.

Eager torch takes the GIL back after every operation (a BERT pass: hundreds of them), so in a process where another
thread runs Python (the server's event loop answering HTTP), each forward stalls at every step the other thread
holds the GIL, and a core sits idle. A traced graph runs all its steps in C++ with the GIL released.
``benchmarks/native_graph_gil.py`` (2 cores, all-MiniLM-L6-v2, rounds of 6 sentences): two model threads beside a
thread running Python a quarter of the time did 336 texts/s eager (1.74 cores busy), 401 traced (1.96); alone, 435
and 452. The graph runs the same operations on the same weights, so its outputs are bit-identical to the eager ones
(a test checks them over many shapes).

The graph is traced on first use for the weights' device and dtype, and traced again when either changes.
Anything the trace would not cover runs eagerly: gradients on, a missing mask or token types, or a torch
without tracing (``torch.jit`` is deprecated upstream; a failed trace is logged once and never retried).
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import torch
from torch import nn

from embedstack.backends.native_bert import NativeBert

logger = logging.getLogger(__name__)


class _Output(nn.Module):
    """What is traced: one output of the encoder (its last hidden state, or a classifier's logits)."""

    def __init__(self, encoder: NativeBert, output: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.output = output

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_types: torch.Tensor) -> torch.Tensor:
        return getattr(self.encoder(input_ids, attention_mask, token_types), self.output)


class GraphForward:
    """Call ``encoder`` through its traced graph when inferring, eagerly otherwise.

    Args:
        encoder: The native BERT; the graph shares its weights (no copy).
        output: What a call returns: ``"last_hidden_state"`` (batch, seq, hidden) or, with a classifier head,
            ``"logits"`` (batch, labels).
    """

    def __init__(self, encoder: NativeBert, output: str = "last_hidden_state") -> None:
        self.encoder = encoder
        self.output = output
        self._traced: tuple[tuple[Any, ...], Any] | None = None  # (device, dtype, weights, input device), graph
        self._failed = False
        self._lock = threading.Lock()

    def __call__(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """The output, as ``getattr(encoder(...), output)``."""
        graph = None
        if not (self._failed or torch.is_grad_enabled() or attention_mask is None or token_type_ids is None):
            graph = self._graph_for(input_ids, attention_mask, token_type_ids)
        if graph is None:
            return getattr(self.encoder(input_ids, attention_mask, token_type_ids), self.output)
        return graph(input_ids, attention_mask, token_type_ids)

    @property
    def graph(self) -> Any:
        """The traced graph (a ``torch.jit.ScriptModule``), or None before the first traced pass or without one."""
        return None if self._traced is None else self._traced[1]

    @property
    def traced_for(self) -> tuple[Any, ...] | None:
        """What the graph was traced for: the weights' device, dtype and storage, and the inputs' device."""
        return None if self._traced is None else self._traced[0]

    def _graph_for(self, *example: torch.Tensor) -> Any:
        weight = self.encoder.word_embeddings.weight
        key = (weight.device, weight.dtype, weight.data_ptr(), example[0].device)
        traced = self._traced  # one read: the key and its graph together
        if traced is not None and traced[0] == key:  # no lock on the way of every pass
            return traced[1]
        with self._lock:
            if (self._traced is None or self._traced[0] != key) and not self._failed:
                try:
                    with warnings.catch_warnings():  # trace's deprecation and shape notes: the graph is checked
                        warnings.simplefilter("ignore")
                        graph = torch.jit.trace(_Output(self.encoder, self.output), example, check_trace=False)
                    self._traced = (key, graph)
                except Exception as exc:  # noqa: BLE001 - any failure leaves the eager forward, which always works
                    logger.info("Running the native BERT eagerly: tracing its forward failed (%s)", exc)
                    self._failed, self._traced = True, None
            return self.graph

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles carry the encoder only; the graph is traced again where they run."""
        return {"encoder": self.encoder, "output": self.output}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["encoder"], state["output"])  # type: ignore[misc]
