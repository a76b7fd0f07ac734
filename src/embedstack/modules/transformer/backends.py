"""Other ways to run a Transformer folder than Hugging Face transformers on torch.

A backend registers a factory here (``embedstack.backends`` does so on import); ``Transformer.load`` asks it
for an input module that runs the same folder with the same vectors. "torch" is the Transformer module itself;
"auto" takes the first registered backend (in registration order) that can run the folder, else "torch".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from embedstack.modules.base import InputModule

# folder -> an input module that runs it, or None when this backend cannot run that folder exactly.
BackendFactory = Callable[[Path], InputModule | None]

_BACKENDS: dict[str, BackendFactory] = {}
_RUNS: dict[str, str] = {}


def register_backend(name: str, factory: BackendFactory, *, runs: str) -> None:
    """Make ``backend=name`` load Transformer folders through ``factory``.

    ``runs`` says which folders it takes (shown when it is asked for a folder it cannot run).
    """
    if name in ("torch", "auto"):
        raise ValueError(f"Backend name {name!r} is reserved.")
    _BACKENDS[name] = factory
    _RUNS[name] = runs


def backend_names() -> list[str]:
    """Every backend name ``Transformer.load`` takes."""
    return ["torch", "auto", *_BACKENDS]


def backend_module(folder: Path, backend: str, *, hf_kwargs_given: bool) -> InputModule | None:
    """The input module ``backend`` runs ``folder`` with, or None to use the Transformer module (torch).

    Raises:
        ValueError: ``backend`` is unknown, or was asked for by name and cannot run this folder.
    """
    if backend == "torch":
        return None
    if backend != "auto" and backend not in _BACKENDS:
        raise ValueError(f"backend {backend!r} is not available; choose one of {backend_names()}.")
    # Hugging Face kwargs (dtype, attention implementation, ...) only mean something to transformers.
    module = None if hf_kwargs_given else _first_module(folder, [backend] if backend != "auto" else list(_BACKENDS))
    if module is None and backend != "auto":
        raise ValueError(
            f"backend={backend!r} runs {_RUNS[backend]}, with no model/processor/config kwargs; {folder} is not "
            "one. Use backend='torch' or 'auto'."
        )
    return module


def _first_module(folder: Path, names: list[str]) -> InputModule | None:
    for name in names:
        module = _BACKENDS[name](folder)
        if module is not None:
            return module
    return None
