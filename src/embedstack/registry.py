"""Module type strings <-> classes: the registry every module declares itself into.

A built-in module declares itself once, with ``@register_module``: the type string sentence-transformers 6.2 writes
for it, any other spelling older folders use, and whether it existed before sentence-transformers 5 (then a
legacy layout writes ``sentence_transformers.models.<Name>``). Every list of module names and every type lookup
derives from here.

Installed packages register their own modules the same way (``@register_module("mypkg.MyPooling")``), or through
the ``embedstack.modules`` entry-point group, which is read the first time a type is not found. Registered modules
load without ``trust_remote_code``. Any other type is code from the model folder, the Hub or an installed module:
it is imported only with ``trust_remote_code=True``.

This file imports no module: it sits below ``embedstack.modules`` (errors <- fileio <- registry <- modules).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from embedstack.errors import UnknownModuleTypeError, UntrustedCodeError, close_matches
from embedstack.remote_code import CODE_REF_ATTR, import_class, local_code_file

logger = logging.getLogger(__name__)

ST = "sentence_transformers"
ENTRY_POINT_GROUP = "embedstack.modules"
ClassT = TypeVar("ClassT", bound=type)
RepoResolver = Callable[[str], Path]


@dataclass(frozen=True)
class ModuleSpec:
    """What the registry knows of one module class.

    Attributes:
        cls: The class.
        type_name: The ``modules.json`` type written for it.
        aliases: Every other type string that names it when read.
        legacy_type_name: The type a legacy layout (sentence-transformers < 5) writes, or None.
        builtin: Part of embedstack (True) or registered by another package.
        example: Builds a small instance, for the contract test and documentation (optional).
    """

    cls: type
    type_name: str
    aliases: tuple[str, ...] = ()
    legacy_type_name: str | None = None
    builtin: bool = False
    example: Callable[[], Any] | None = None

    @property
    def name(self) -> str:
        """The class name."""
        return self.cls.__name__


_SPECS: dict[type, ModuleSpec] = {}
_BY_TYPE: dict[str, ModuleSpec] = {}
_entry_points_loaded = False


def register_module(
    type_name: str | None = None,
    *,
    aliases: tuple[str, ...] = (),
    legacy: bool = False,
    example: Callable[[], Any] | None = None,
) -> Callable[[ClassT], ClassT]:
    """Class decorator: make a module class loadable by its ``modules.json`` type string.

    Args:
        type_name: The type written for it. ``sentence_transformers....`` names a built-in of the reference (its
            older spellings ``sentence_transformers.models.<Name>`` and the package re-exports are added as
            aliases); default: the class's own dotted path.
        aliases: More type strings that name it.
        legacy: The module existed before sentence-transformers 5: a legacy layout writes
            ``sentence_transformers.models.<Name>``.
        example: A function building a small instance (used by the contract test).

    Example:
        >>> from embedstack.modules import Module
        >>> @register_module("my_package.Scale")
        ... class Scale(Module):
        ...     config_keys = ["factor"]
        ...     def __init__(self, factor=2.0):
        ...         super().__init__()
        ...         self.factor = factor
        ...     def forward(self, features, **kwargs):
        ...         features["sentence_embedding"] = features["sentence_embedding"] * self.factor
        ...         return features
        ...     def save(self, output_path, *args, **kwargs):
        ...         self.save_config(output_path)
        >>> type_name_for(Scale())  # what modules.json says
        'my_package.Scale'
        >>> resolve_module_class("my_package.Scale", model_path=Path("."), trust_remote_code=False, where="x") is Scale
        True
    """

    def decorate(cls: ClassT) -> ClassT:
        name = cls.__name__
        written = type_name or f"{cls.__module__}.{cls.__qualname__}"
        builtin = written.startswith(f"{ST}.") or cls.__module__.startswith("embedstack.")
        spellings = [*aliases, f"{cls.__module__}.{cls.__qualname__}"]
        if written.startswith(f"{ST}."):
            spellings += [
                f"{ST}.models.{name}",
                f"{ST}.models.{name}.{name}",
                f"{ST}.sentence_transformer.modules.{name}",
                f"embedstack.modules.{name}",
            ]
        spec = ModuleSpec(
            cls=cls,
            type_name=written,
            aliases=tuple(dict.fromkeys(s for s in spellings if s != written)),
            legacy_type_name=f"{ST}.models.{name}" if legacy else None,
            builtin=builtin,
            example=example,
        )
        for spelling in (written, *spec.aliases):
            other = _BY_TYPE.get(spelling)
            if other is not None and other.cls is not cls and other.cls.__qualname__ != cls.__qualname__:
                raise ValueError(f"Module type {spelling!r} is registered twice: {other.cls} and {cls}.")
            _BY_TYPE[spelling] = spec
        _SPECS[cls] = spec
        return cls

    return decorate


def registered_modules(*, builtin_only: bool = False) -> dict[str, ModuleSpec]:
    """The registered module specs by class name (built-ins only, when asked)."""
    return {spec.name: spec for spec in _SPECS.values() if spec.builtin or not builtin_only}


def spec_of(cls: type) -> ModuleSpec | None:
    """The registry's entry for exactly ``cls`` (not a subclass), or None."""
    return _SPECS.get(cls)


def type_name_for(module: object, *, legacy: bool = False) -> str:
    """The ``type`` string written to ``modules.json`` for ``module``."""
    cls = type(module)
    # A backend's stand-in (the onnx backend's module for a Transformer) saves as the module it stands for.
    spec = spec_of(getattr(cls, "saves_as", cls))
    if spec is not None:
        return (legacy and spec.legacy_type_name) or spec.type_name
    ref = cls.__dict__.get(CODE_REF_ATTR)
    if ref is not None:  # loaded as remote code
        return ref.type_ref or f"{ref.module}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _lookup(type_name: str) -> ModuleSpec | None:
    global _entry_points_loaded
    if type_name not in _BY_TYPE and not _entry_points_loaded:
        _entry_points_loaded = True
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                cls = entry_point.load()
            except Exception as exc:  # a broken plug-in must not break every load
                logger.warning("Could not load the embedstack module plug-in %s (%s)", entry_point.value, exc)
                continue
            if isinstance(cls, type) and cls not in _SPECS:
                register_module(entry_point.value.replace(":", "."))(cls)
    return _BY_TYPE.get(type_name)


def resolve_module_class(
    type_name: Any,
    *,
    model_path: Path,
    trust_remote_code: bool,
    where: str,
    module_path: Path | None = None,
    resolve_repo: RepoResolver | None = None,
) -> type:
    """The class for a ``modules.json`` type string; ``where`` names the entry in errors.

    ``type_name`` is a registered type (any spelling), ``module.Class`` for code in the model folder (its root, or
    ``module_path``, the entry's own folder, where sentence-transformers copies it) or an installed package, or
    ``{repo_id}--{module}.{Class}`` for code in another Hub repository, fetched with ``resolve_repo``.
    """
    if not isinstance(type_name, str) or not type_name:
        raise UnknownModuleTypeError(f"{where} has no 'type' string. Restore modules.json from the original model.")
    spec = _lookup(type_name)
    if spec is not None:
        return spec.cls
    if type_name.startswith((f"{ST}.", "embedstack.")):
        raise UnknownModuleTypeError(
            f"{where} names type {type_name!r}, which is not a module embedstack knows."
            f"{close_matches(type_name, _BY_TYPE)} Fix the type in modules.json."
        )
    repo_id, _, dotted = type_name.rpartition("--") if "--" in type_name else ("", "", type_name)
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name or not class_name.isidentifier():
        raise UnknownModuleTypeError(
            f"{where} names type {type_name!r}, which is neither a built-in module nor a 'module.Class' path. "
            f"Fix the type in modules.json.{close_matches(type_name, _BY_TYPE)}"
        )
    code_root = model_path
    if module_path is not None and local_code_file(model_path, module_name) is None:
        if local_code_file(module_path, module_name) is not None:
            code_root = module_path
    if not trust_remote_code:
        raise UntrustedCodeError(
            f"{where} names type {type_name!r}, which is not a built-in module. Loading it would run "
            f"{_describe_code_source(repo_id, module_name, class_name, code_root)}. "
            "Pass trust_remote_code=True if you trust this model."
        )
    if repo_id:
        if resolve_repo is None:
            raise UnknownModuleTypeError(
                f"{where} names type {type_name!r}, whose code is in the Hub repository {repo_id}, but this load "
                "has no way to reach the Hub. Load the model with SentenceTransformer(...)."
            )
        code_root = resolve_repo(repo_id)
    return _import_custom_class(code_root, module_name, class_name, type_name if repo_id else None, where)


def _describe_code_source(repo_id: str, module_name: str, class_name: str, model_path: Path) -> str:
    relative = module_name.replace(".", "/") + ".py"
    if repo_id:
        return f"class {class_name} in {relative} of the Hub repository {repo_id}"
    local_file = local_code_file(model_path, module_name)
    if local_file is not None:
        return f"class {class_name} in {local_file}"
    return f"class {class_name} of the installed Python module {module_name!r}"


def _import_custom_class(root: Path, module_name: str, class_name: str, type_ref: str | None, where: str) -> type:
    try:
        if local_code_file(root, module_name) is not None:
            return import_class(root, module_name, class_name, type_ref=type_ref)
        if type_ref:
            raise ImportError(f"{root} has no {module_name.replace('.', '/')}.py")
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UnknownModuleTypeError(
            f"{where} names class {class_name} of module {module_name!r}, which could not be imported ({exc}). "
            f"Install the package that provides it, or put {module_name.replace('.', '/')}.py in the model folder."
        ) from None
    if not isinstance(cls, type):
        raise UnknownModuleTypeError(f"{where} names {module_name}.{class_name}, which is not a class.")
    return cls


def import_trusted_class(dotted: str, root: Path, where: str) -> type:
    """Import ``module.Class`` from ``root`` or an installed package; the caller has checked trust."""
    module_name, _, class_name = dotted.rpartition(".")
    return _import_custom_class(root, module_name, class_name, None, where)
