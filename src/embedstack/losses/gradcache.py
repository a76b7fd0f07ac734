"""GradCache (https://arxiv.org/abs/2101.06983): a large batch's loss in the memory of one mini-batch.

1. Embed every mini-batch without a graph, keeping each one's random state.
2. Compute the loss on those embeddings (as leaves) and its gradient with respect to them.
3. When the trainer calls ``backward``, embed each mini-batch again with a graph, replaying its random state (so
   dropout draws the same masks), and push the cached gradient through it.

Mini-batches are length-sorted passes of at most ``mini_batch_size`` rows (from :mod:`embedstack.losses.passes`),
so the replayed forwards carry little padding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.checkpoint import get_device_states, set_device_states

from embedstack.losses.passes import pass_batches


@dataclass
class _RandomState:
    """The RNG state before a forward, to replay it."""

    cpu: Tensor
    devices: list[int]
    device_states: list[Tensor]

    @classmethod
    def capture(cls, features: dict[str, Any]) -> _RandomState:
        devices, states = get_device_states(*[value for value in features.values() if isinstance(value, Tensor)])
        return cls(torch.get_rng_state(), devices, states)

    def replay(self) -> Any:
        fork = torch.random.fork_rng(devices=self.devices)
        return _Replay(fork, self)


class _Replay:
    def __init__(self, fork: Any, state: _RandomState) -> None:
        self.fork, self.state = fork, state

    def __enter__(self) -> None:
        self.fork.__enter__()
        torch.set_rng_state(self.state.cpu)
        set_device_states(self.state.devices, self.state.device_states)

    def __exit__(self, *exc: object) -> None:
        self.fork.__exit__(*exc)


def cached_loss(
    model: nn.Module,
    columns: list[dict[str, Any]],
    labels: Tensor | None,
    mini_batch_size: int,
    calculate_loss: Callable[..., Tensor],
) -> Tensor:
    """``calculate_loss(embeddings, labels, with_backward=...)`` with GradCache.

    ``calculate_loss`` scores the batch a mini-batch of rows at a time and, with ``with_backward=True``, runs each
    chunk's backward itself (so no batch-by-batch score matrix is alive at once) and returns the detached loss.
    """
    batches = pass_batches(columns, mini_batch_size)
    states: list[_RandomState] = []
    pieces: list[Tensor] = []
    with torch.no_grad():
        for batch in batches:
            features = dict(batch.features)  # the forward writes into its features; the replay needs them clean
            states.append(_RandomState.capture(features))
            pieces.append(model(features)["sentence_embedding"])
    if not torch.is_grad_enabled():
        return calculate_loss(batches.scatter(pieces), labels, with_backward=False)
    leaves = [piece.detach().requires_grad_() for piece in pieces]
    scattered = batches.scatter(leaves)  # (rows, dim) per column, in the columns' order
    inputs = [column.detach().requires_grad_() for column in scattered]
    loss = calculate_loss(inputs, labels, with_backward=True)
    torch.autograd.backward(scattered, [_grad(column) for column in inputs])
    grads = [_grad(leaf) for leaf in leaves]
    result = loss.detach().requires_grad_()
    result.register_hook(partial(_replay, model=model, batches=batches, states=states, grads=grads))
    return result


def _grad(tensor: Tensor) -> Tensor:
    return tensor.grad if tensor.grad is not None else torch.zeros_like(tensor)


def _replay(
    grad_output: Tensor, *, model: nn.Module, batches: Any, states: list[_RandomState], grads: list[Tensor]
) -> None:
    """Step 3: each mini-batch again, with a graph, its cached gradient scaled by the loss's own gradient.

    Under DistributedDataParallel only the last replay synchronizes gradients: processes may plan different
    numbers of passes (texts differ in length), and every process must run the same number of all-reduces.
    """
    last = len(batches) - 1
    with torch.enable_grad():
        for index, (batch, state, grad) in enumerate(zip(batches, states, grads)):
            synced = model.no_sync() if isinstance(model, DistributedDataParallel) and index < last else None
            with state.replay(), synced or contextlib.nullcontext():
                embeddings = model(dict(batch.features))["sentence_embedding"]
                if embeddings.requires_grad:
                    surrogate = torch.dot(embeddings.flatten().float(), grad.flatten().float()) * grad_output
                    surrogate.backward()
