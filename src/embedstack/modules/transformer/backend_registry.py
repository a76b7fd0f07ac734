"""Other ways to run a Transformer folder than Hugging Face transformers on torch.

A backend registers a factory here (``embedstack.backends.registration.register_backends()`` does so for the
native and onnx backends; the model base calls it when ``embedstack.model`` is imported); ``Transformer.load``
asks it for an input module that runs the same folder with the same vectors. "torch" is the Transformer module
itself. "auto" hands every backend registered for it that can run the folder, and torch, to the chooser
registered with them (it measures them on this machine: backends/select.py); without a chooser it takes the
first that can run the folder, else torch.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from embedstack.modules.base import InputModule

# (folder, the caller's {"model_kwargs": ..., "processor_kwargs": ..., "config_kwargs": ...}) -> an input module
# that runs the folder, or None when this backend cannot run it exactly.
BackendFactory = Callable[[Path, dict[str, Any]], InputModule | None]

# model_kwargs that choose an exported file and its runtime (sentence-transformers' onnx and openvino backends);
# Hugging Face transformers has no use for them.
EXPORTED_FILE_OPTIONS = frozenset({"file_name", "provider", "export", "int8_min_cosine"})

# (folder, the caller's kwargs, {backend: builds its module or None}, builds the torch module) -> the module to run
AutoChooser = Callable[
    [Path, dict[str, Any], dict[str, Callable[[], InputModule | None]], Callable[[], InputModule]], InputModule
]

_BACKENDS: dict[str, BackendFactory] = {}
_RUNS: dict[str, str] = {}
_AUTO: dict[str, BackendFactory] = {}
_CHOOSER: list[AutoChooser] = []


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


def register_auto_chooser(chooser: AutoChooser) -> None:
    """Make ``chooser`` decide what ``backend="auto"`` runs (the last one registered decides)."""
    _CHOOSER.append(chooser)


def auto_module(folder: Path, hf_kwargs: dict[str, Any], build_torch: Callable[[], InputModule]) -> InputModule:
    """The input module ``backend="auto"`` runs ``folder`` with."""
    candidates: dict[str, Callable[[], InputModule | None]] = {
        name: partial(factory, folder, hf_kwargs) for name, factory in _AUTO.items()
    }
    if _CHOOSER:
        return _CHOOSER[-1](folder, hf_kwargs, candidates, build_torch)
    for build in candidates.values():
        module = build()
        if module is not None:
            return module
    return build_torch()


def backend_names() -> list[str]:
    """Every backend name ``Transformer.load`` takes."""
    return ["torch", "auto", *_BACKENDS]


def backend_module(folder: Path, backend: str, hf_kwargs: dict[str, Any]) -> InputModule | None:
    """The input module ``backend`` runs ``folder`` with, or None to use the Transformer module (torch).

    Raises:
        ValueError: ``backend`` is unknown, or was asked for by name and cannot run this folder.
    """
    if backend in ("torch", "auto"):
        return None  # auto: see auto_module
    if backend not in _BACKENDS:
        raise ValueError(
            f"backend {backend!r} is not available; the registered backends are {backend_names()}. The built-in "
            "native and onnx backends register when embedstack.model is imported (or call "
            "embedstack.backends.registration.register_backends()); others, with register_backend()."
        )
    module = _BACKENDS[backend](folder, hf_kwargs)
    if module is None:
        raise ValueError(
            f"backend={backend!r} runs {_RUNS[backend]}; {folder} is not one. Use backend='torch' or 'auto'."
        )
    return module
