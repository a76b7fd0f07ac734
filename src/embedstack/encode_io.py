"""What encode takes and gives: the caller's inputs as a batch, option checks, output conversion, progress bars."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from embedstack.inputs import is_message
from embedstack.quantization import PRECISIONS, Precision


def is_singular_input(inputs: Any) -> bool:
    """Whether ``inputs`` is one input rather than a batch.

    One input: a str, a dict, one conversation, a 0-d array. A batch: a list, tuple, ``datasets`` column, or a
    1-D+ array of strings or objects.
    """
    if isinstance(inputs, list) and inputs and is_message(inputs[0]):
        return True
    if isinstance(inputs, (list, tuple)) or is_dataset_column(inputs):
        return False
    if isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in "UO":
        return False
    return True


def legacy_inputs(inputs: Any, kwargs: dict[str, Any], method: str, stacklevel: int = 3) -> Any:
    """``inputs``, or the deprecated ``sentences=`` keyword's value (popped from ``kwargs``, with a FutureWarning).

    ``stacklevel`` points the warning at the user's call (3: the caller of the method that calls this).

    As the reference's ``@deprecated_kwargs(sentences="inputs")``: when both are given, ``sentences`` is dropped.
    """
    if "sentences" not in kwargs:
        return inputs
    legacy = kwargs.pop("sentences")
    message = f"{method}(sentences=...) is deprecated; pass `inputs` instead."
    warnings.warn(message, FutureWarning, stacklevel=stacklevel)
    return legacy if inputs is None else inputs


@contextmanager
def progress(enabled: bool, total: int | None) -> Iterator[Any]:
    """A tqdm bar over ``total`` inputs when ``enabled``, else None."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="Encoding", unit="input")
    try:
        yield bar
    finally:
        bar.close()


def convert_output(embeddings: Any, to_tensor: bool, to_numpy: bool, device: torch.device) -> Any:
    """What encode returns: one tensor, an ndarray, or a list of per-input tensors."""
    if to_tensor:
        if isinstance(embeddings, torch.Tensor) or len(embeddings):
            return torch.as_tensor(embeddings)
        return torch.tensor([], device=device)
    if to_numpy:
        if not len(embeddings):
            return np.array([])
        if isinstance(embeddings, torch.Tensor):
            if embeddings.dtype == torch.bfloat16:
                embeddings = embeddings.float()
            return embeddings.cpu().numpy()
        return embeddings
    if isinstance(embeddings, np.ndarray):
        return list(torch.from_numpy(embeddings))
    return list(embeddings)


def checked_options(batch_size: Any, output_value: Any, precision: Any) -> Precision:
    """Validate encode's options; returns the precision (None means float32, as in sentence-transformers)."""
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive integer or None (token budget), got {batch_size!r}.")
    if output_value not in ("sentence_embedding", "token_embeddings", None):
        raise ValueError(
            f"output_value must be 'sentence_embedding', 'token_embeddings' or None, got {output_value!r}."
        )
    precision = precision or "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not supported; choose one of {list(PRECISIONS)}.")
    return precision


def as_batch(inputs: Any, singular: bool) -> list[Any]:
    """The caller's inputs as a list (a 0-d array becomes its value)."""
    if singular:
        return [inputs.item() if isinstance(inputs, np.ndarray) and inputs.ndim == 0 else inputs]
    return inputs.tolist() if isinstance(inputs, np.ndarray) else list(inputs)


def is_dataset_column(value: Any) -> bool:
    """A ``datasets`` column (``dataset["text"]``): a lazy sequence of rows, read without importing datasets."""
    return type(value).__name__ == "Column" and type(value).__module__.startswith("datasets")


def windows(inputs: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` inputs (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"window_size must be a positive integer, got {size!r}.")
    source = iter(inputs)
    while window := list(itertools.islice(source, size)):
        yield window
