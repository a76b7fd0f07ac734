"""One module in, one module out: building a module from its folder inside a model, and saving it into one.

Used for the model's own modules.json entries (persistence/folder.py) and for modules nested in a Router. Paths
are local: the model resolved any Hub id before loading, and a code repository named by a
``{repo_id}--module.Class`` type is fetched through ``LoadOptions.resolve_repo``, which the model provides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from torch import nn

from embedstack.errors import EmbedstackError, ModelFormatError, UntrustedCodeError
from embedstack.fileio import check_module_path
from embedstack.modules.compat import accepts_keyword, old_style_module, takes_path_only
from embedstack.registry import RepoResolver, resolve_module_class, spec_of, type_name_for
from embedstack.remote_code import code_ref_of, copy_code

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOptions:
    """How modules are built when a model loads.

    Attributes:
        trust_remote_code: Allow code from the model folder, the Hub or installed modules to run.
        model_kwargs: The caller's kwargs for the Hugging Face model's ``from_pretrained``.
        processor_kwargs: The caller's kwargs for the processor's ``from_pretrained``.
        config_kwargs: The caller's kwargs for the config's ``from_pretrained``.
        backend: "torch", "native", "auto", or another registered backend (modules/transformer/backend_registry.py).
        resolve_repo: Turns a Hub repository id into a local folder of its code files, with the model's Hub
            options; None where no Hub may be reached.
        device: The device the model will run on, when known ("auto" measures backends only for the CPU).
    """

    trust_remote_code: bool = False
    model_kwargs: dict[str, Any] | None = None
    processor_kwargs: dict[str, Any] | None = None
    config_kwargs: dict[str, Any] | None = None
    backend: str = "torch"
    resolve_repo: RepoResolver | None = None
    device: str | None = None

    def hf_kwargs(self) -> dict[str, dict[str, Any] | None]:
        """The caller's Hugging Face kwargs dicts, by name."""
        return {
            "model_kwargs": self.model_kwargs,
            "processor_kwargs": self.processor_kwargs,
            "config_kwargs": self.config_kwargs,
        }

    def load_kwargs(self) -> dict[str, Any]:
        """The keywords every module's ``load`` gets (the seed's module kwargs)."""
        return {"trust_remote_code": self.trust_remote_code, "backend": self.backend, **self.hf_kwargs()}

    @classmethod
    def from_load_kwargs(cls, kwargs: dict[str, Any]) -> LoadOptions:
        """The options a module's ``load`` was called with (what a Router passes on to its routes)."""
        options = kwargs.get("load_options")
        if isinstance(options, LoadOptions):
            return options
        names = ("trust_remote_code", "model_kwargs", "processor_kwargs", "config_kwargs", "backend")
        return cls(**{name: kwargs[name] for name in names if name in kwargs})


def load_module(folder: Path, subfolder: str, type_name: Any, *, where: str, options: LoadOptions) -> nn.Module:
    """Build the module of type ``type_name`` saved in ``folder/subfolder``; ``where`` names it in errors."""
    check_module_path(folder, subfolder, where)
    cls = resolve_module_class(
        type_name,
        model_path=folder,
        module_path=folder / subfolder,
        trust_remote_code=options.trust_remote_code,
        where=where,
        resolve_repo=options.resolve_repo,
    )
    return load_module_as(cls, folder, subfolder, options=options)


def load_module_as(cls: type, folder: Path, subfolder: str, *, options: LoadOptions) -> nn.Module:
    """Build the module saved in ``folder/subfolder`` with the given class (already imported: no code is resolved)."""
    load = getattr(cls, "load", None)
    if load is None:
        raise ModelFormatError(
            f"{cls.__qualname__} has no load() method, so it cannot be built from {folder / subfolder}."
        )
    try:
        if takes_path_only(load):  # a legacy module: a plain nn.Module with a static load(path)
            return old_style_module(cls, folder / subfolder, options.trust_remote_code, options.hf_kwargs())
        kwargs = options.load_kwargs()
        if accepts_keyword(load, "load_options"):
            kwargs["load_options"] = options  # modules that load modules (the Router) pass them on
        module: nn.Module = load(str(folder), subfolder=subfolder, **kwargs)
        return module
    except (EmbedstackError, ImportError, MemoryError):
        raise
    except Exception as exc:  # anything else from deep inside a loader: say which module folder failed
        raise _load_failure(exc, cls, folder / subfolder) from exc


def save_module(
    module: nn.Module, parent: Path, subfolder: str, *, safe_serialization: bool = True, legacy_layout: bool = False
) -> str:
    """Save ``module`` into ``parent/subfolder`` (created), with the code of a custom module.

    Returns:
        The ``modules.json`` type string for it (its pre-5 spelling with ``legacy_layout``).
    """
    target = parent / subfolder
    target.mkdir(parents=True, exist_ok=True)
    save = cast("Callable[..., Any]", module.save)  # torch types an nn.Module's own attributes as Tensor | Module
    if not accepts_keyword(save, "safe_serialization"):  # legacy plain nn.Module with save(path)
        save(str(target))
    elif legacy_layout and spec_of(type(module)) is not None:  # only registered modules know the legacy layout
        save(str(target), safe_serialization=safe_serialization, legacy_layout=True)
    else:
        _save_with_fallback(save, str(target), safe_serialization)
    _copy_remote_code(module, target, parent)
    return type_name_for(module, legacy=legacy_layout)


def _save_with_fallback(save: Callable[..., Any], target: str, safe_serialization: bool) -> None:
    """``save(target, safe_serialization=...)``, or ``save(target)`` when the keyword is refused at the call.

    A save wrapped by a decorator taking ``*args, **kwargs`` looks as if it took the keyword; the function inside
    then raises TypeError naming it. sentence-transformers retries without the keyword on any TypeError; here only
    on one that names the keyword, so other errors in a save still surface.
    """
    try:
        save(target, safe_serialization=safe_serialization)
    except TypeError as exc:
        if "safe_serialization" not in str(exc):
            raise
        logger.debug("%s refused safe_serialization (%s); saving without it", save, exc)
        save(target)


def _copy_remote_code(module: nn.Module, target: Path, root: Path) -> None:
    """Copy the code of a custom module along with it.

    It goes into the model root (where ``module.Class`` types are resolved) and the module's folder (where
    sentence-transformers copies it).
    """
    ref = code_ref_of(type(module))
    if ref is None or ref.type_ref is not None:  # not carried, or kept in another Hub repository
        return
    copy_code(ref, list(dict.fromkeys([root, target])))


def _load_failure(exc: Exception, cls: type, module_folder: Path) -> EmbedstackError:
    detail = " ".join(str(exc).split())[:500]
    if "trust_remote_code" in detail:  # transformers refusing custom modeling code
        return UntrustedCodeError(
            f"{cls.__name__} in {module_folder} needs modeling code from the model folder or the Hub "
            f"({detail}). Pass trust_remote_code=True if you trust this model."
        )
    return ModelFormatError(
        f"{cls.__name__} could not be loaded from {module_folder}: {type(exc).__name__}: {detail}. The folder is "
        "damaged or incomplete (a file cut short or missing, or settings that do not fit the module); restore it "
        "from the original model."
    )
