"""Other ways to run a Transformer folder than Hugging Face transformers on torch.

A backend registers a factory here (``embedstack.backends.registration.register_backends()`` does so for the
native and onnx backends; the model base calls it when ``embedstack.model`` is imported); ``Transformer.load``
asks it for an input module that runs the same folder with the same vectors. "torch" is the Transformer module
itself. "auto" hands every backend registered for it that can run the folder, and torch, to the chooser
registered with them (it measures them on this machine: backends/select.py); without a chooser it takes the
first that can run the folder, else torch.

Each backend declares the transformer_tasks it runs (``tasks``; embedding backbones, "feature-extraction", unless
it says more). A backend asked by name for a folder of another task (a cross-encoder's classifier on the native
backend) is refused, naming the backends that run it; "auto" only considers backends that run the task. A factory
of a backend that runs more than embedding backbones is called with the folder's task as ``task=``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from embedstack.modules.base import InputModule
from embedstack.modules.transformer.config import FEATURES

# (folder, the caller's {"model_kwargs": ..., "processor_kwargs": ..., "config_kwargs": ...}) -> an input module
# that runs the folder, or None when this backend cannot run it exactly.
BackendFactory = Callable[[Path, dict[str, Any]], InputModule | None]

# model_kwargs that choose an exported file and its runtime (sentence-transformers' onnx and openvino backends);
# Hugging Face transformers has no use for them.
EXPORTED_FILE_OPTIONS = frozenset(
    {"file_name", "provider", "export", "int8_min_cosine", "int8_min_rank_agreement", "int8_max_score_diff"}
)

# (folder, the caller's kwargs, {backend: builds its module or None}, builds the torch module, task=the folder's
# transformer_task) -> the module to run
AutoChooser = Callable[..., InputModule]

_BACKENDS: dict[str, BackendFactory] = {}
_RUNS: dict[str, str] = {}
_AUTO: dict[str, BackendFactory] = {}
_TASKS: dict[str, tuple[str, ...]] = {}
_CHOOSER: list[AutoChooser] = []


def register_backend(
    name: str,
    factory: BackendFactory | Callable[..., InputModule | None],
    *,
    runs: str,
    auto: bool | Callable[..., InputModule | None] = False,
    tasks: tuple[str, ...] = (FEATURES,),
) -> None:
    """Make ``backend=name`` load Transformer folders through ``factory``.

    ``runs`` says which folders it takes (shown when it is asked for a folder it cannot run). With ``auto`` the
    backend is tried by ``backend="auto"``, in the order of registration (for backends measured to be faster
    than torch on such folders); ``auto`` may be a factory of its own, for a backend that ``auto`` should take
    on fewer folders than an explicit request would (e.g. only where no export is needed). ``tasks`` are the
    transformer_tasks it runs; when they are more than "feature-extraction", its factories take ``task=``.
    """
    if name in ("torch", "auto"):
        raise ValueError(f"Backend name {name!r} is reserved.")
    _BACKENDS[name] = factory
    _RUNS[name] = runs
    _TASKS[name] = tuple(tasks)
    if auto:
        _AUTO[name] = factory if auto is True else auto


def _bound(
    name: str, factory: Callable[..., InputModule | None], folder: Path, hf_kwargs: dict[str, Any], task: str
) -> Callable[[], InputModule | None]:
    """``factory`` of backend ``name`` ready to build the module for ``folder`` (with ``task=`` where it takes one)."""
    if _TASKS[name] == (FEATURES,):
        return partial(factory, folder, hf_kwargs)
    return partial(factory, folder, hf_kwargs, task=task)


def _runners(task: str) -> list[str]:
    return ["torch", *(name for name, tasks in _TASKS.items() if task in tasks)]


def register_auto_chooser(chooser: AutoChooser) -> None:
    """Make ``chooser`` decide what ``backend="auto"`` runs (the last one registered decides)."""
    _CHOOSER.append(chooser)


def auto_module(
    folder: Path, hf_kwargs: dict[str, Any], build_torch: Callable[[], InputModule], *, task: str = FEATURES
) -> InputModule:
    """The input module ``backend="auto"`` runs ``folder`` (of transformer_task ``task``) with."""
    candidates: dict[str, Callable[[], InputModule | None]] = {
        name: _bound(name, factory, folder, hf_kwargs, task) for name, factory in _AUTO.items() if task in _TASKS[name]
    }
    if _CHOOSER:
        return _CHOOSER[-1](folder, hf_kwargs, candidates, build_torch, task=task)
    for build in candidates.values():
        module = build()
        if module is not None:
            return module
    return build_torch()


def backend_names() -> list[str]:
    """Every backend name ``Transformer.load`` takes."""
    return ["torch", "auto", *_BACKENDS]


def backend_module(
    folder: Path, backend: str, hf_kwargs: dict[str, Any], *, task: str = FEATURES
) -> InputModule | None:
    """The input module ``backend`` runs ``folder`` with, or None to use the Transformer module (torch).

    ``task`` is the folder's transformer_task.

    Raises:
        ValueError: ``backend`` is unknown, does not run ``task``, or was asked for by name and cannot run this
            folder.
    """
    if backend in ("torch", "auto"):
        return None  # auto: see auto_module
    if backend not in _BACKENDS:
        raise ValueError(
            f"backend {backend!r} is not available; the registered backends are {backend_names()}. The built-in "
            "native and onnx backends register when embedstack.model is imported (or call "
            "embedstack.backends.registration.register_backends()); others, with register_backend()."
        )
    if task not in _TASKS[backend]:
        runs = " and ".join(repr(name) for name in _TASKS[backend])
        kind = " (a cross-encoder's classifier)" if task == "sequence-classification" else ""
        raise ValueError(
            f"backend={backend!r} cannot run {folder}: it holds a transformer_task {task!r} model{kind}, and "
            f"{backend!r} runs only {runs} models. Load it with backend= one of {[*_runners(task), 'auto']}."
        )
    module = _bound(backend, _BACKENDS[backend], folder, hf_kwargs, task)()
    if module is None:
        raise ValueError(
            f"backend={backend!r} runs {_RUNS[backend]}; {folder} is not one. Use backend='torch' or 'auto'."
        )
    return module
