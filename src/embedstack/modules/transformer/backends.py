"""Other ways to run a Transformer folder than Hugging Face transformers on torch.

A backend registers a factory here (``embedstack.backends`` does so on import); ``Transformer.load`` asks it
for an input module that runs the same folder with the same vectors. "torch" is the Transformer module itself;
"auto" takes the first backend registered for it that can run the folder, else "torch".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedstack.modules.base import InputModule

# (folder, the caller's {"model_kwargs": ..., "processor_kwargs": ..., "config_kwargs": ...}) -> an input module
# that runs the folder, or None when this backend cannot run it exactly.
BackendFactory = Callable[[Path, dict[str, Any]], InputModule | None]

# model_kwargs that choose an exported file and its runtime (sentence-transformers' onnx and openvino backends);
# Hugging Face transformers has no use for them.
EXPORTED_FILE_OPTIONS = frozenset({"file_name", "provider", "export"})

_BACKENDS: dict[str, BackendFactory] = {}
_RUNS: dict[str, str] = {}
_AUTO: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory, *, runs: str, auto: bool | BackendFactory = False) -> None:
    """Make ``backend=name`` load Transformer folders through ``factory``.

    ``runs`` says which folders it takes (shown when it is asked for a folder it cannot run). With ``auto`` the
    backend is tried by ``backend="auto"``, in the order of registration (for backends measured to be faster
    than torch on such folders); ``auto`` may be a factory of its own, for a backend that ``auto`` should take
    on fewer folders than an explicit request would (e.g. only where no export is needed).
    """
    if name in ("torch", "auto"):
        raise ValueError(f"Backend name {name!r} is reserved.")
    _BACKENDS[name] = factory
    _RUNS[name] = runs
    if auto:
        _AUTO[name] = factory if auto is True else auto


def backend_names() -> list[str]:
    """Every backend name ``Transformer.load`` takes."""
    return ["torch", "auto", *_BACKENDS]


def backend_module(folder: Path, backend: str, hf_kwargs: dict[str, Any]) -> InputModule | None:
    """The input module ``backend`` runs ``folder`` with, or None to use the Transformer module (torch).

    Raises:
        ValueError: ``backend`` is unknown, or was asked for by name and cannot run this folder.
    """
    if backend == "torch":
        return None
    if backend != "auto" and backend not in _BACKENDS:
        raise ValueError(f"backend {backend!r} is not available; choose one of {backend_names()}.")
    factories = [_BACKENDS[backend]] if backend != "auto" else list(_AUTO.values())
    for factory in factories:
        module = factory(folder, hf_kwargs)
        if module is not None:
            return module
    if backend != "auto":
        raise ValueError(
            f"backend={backend!r} runs {_RUNS[backend]}; {folder} is not one. Use backend='torch' or 'auto'."
        )
    return None
