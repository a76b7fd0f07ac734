"""Module type strings <-> classes.

Our built-ins answer to the type strings sentence-transformers writes, current and legacy. Any other type is
code from outside embedstack: it is imported only with ``trust_remote_code=True``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from embedstack.errors import UnknownModuleTypeError, UntrustedCodeError, close_matches
from embedstack.persistence.legacy import CURRENT_TYPE_NAMES, TYPE_ALIASES, legacy_type_name
from embedstack.remote_code import CODE_REF_ATTR, import_class, local_code_file


def builtin_modules() -> dict[str, type]:
    """Our built-in module classes by class name."""
    from embedstack import modules

    return {name: getattr(modules, name) for name in modules.BUILTIN_MODULE_NAMES}


def type_name_for(module: object, *, legacy: bool = False) -> str:
    """The ``type`` string written to ``modules.json`` for ``module``."""
    cls = type(module)
    builtins = builtin_modules()
    if builtins.get(cls.__name__) is cls:
        return (legacy and legacy_type_name(cls.__name__)) or CURRENT_TYPE_NAMES[cls.__name__]
    ref = cls.__dict__.get(CODE_REF_ATTR)
    if ref is not None:  # loaded as remote code
        return ref.type_ref or f"{ref.module}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_module_class(
    type_name: str, *, model_path: Path, trust_remote_code: bool, where: str, module_path: Path | None = None
) -> type:
    """The class for a ``modules.json`` type string; ``where`` names the entry in errors.

    ``type_name`` is a built-in's name (any spelling sentence-transformers has used), ``module.Class`` for code in
    the model folder (its root, or ``module_path``, the entry's own folder, where sentence-transformers copies it)
    or an installed package, or ``{repo_id}--{module}.{Class}`` for code in another Hub repository.
    """
    if not isinstance(type_name, str) or not type_name:
        raise UnknownModuleTypeError(f"{where} has no 'type' string. Restore modules.json from the original model.")
    builtins = builtin_modules()
    if type_name in TYPE_ALIASES:
        if TYPE_ALIASES[type_name] not in builtins:
            raise UnknownModuleTypeError(
                f"{where} names type {type_name!r}; embedstack does not implement {TYPE_ALIASES[type_name]} yet. "
                "Load this model with sentence-transformers, or replace the module with a Transformer."
            )
        return builtins[TYPE_ALIASES[type_name]]
    if type_name.startswith("embedstack.modules."):
        name = type_name.rsplit(".", 1)[-1]
        if name in builtins:
            return builtins[name]
    if type_name.startswith(("sentence_transformers.", "embedstack.")):
        raise UnknownModuleTypeError(
            f"{where} names type {type_name!r}, which is not a module embedstack knows."
            f"{close_matches(type_name, TYPE_ALIASES)} Fix the type in modules.json."
        )
    repo_id, _, dotted = type_name.rpartition("--") if "--" in type_name else ("", "", type_name)
    module_name, _, class_name = dotted.rpartition(".")
    if not module_name or not class_name.isidentifier():
        raise UnknownModuleTypeError(
            f"{where} names type {type_name!r}, which is neither a built-in module nor a 'module.Class' path. "
            f"Fix the type in modules.json.{close_matches(type_name, TYPE_ALIASES)}"
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
        from embedstack.persistence.hub import resolve_model_path

        code_root = resolve_model_path(repo_id)
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
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UnknownModuleTypeError(
            f"{where} names class {class_name} of module {module_name!r}, which could not be imported ({exc}). "
            f"Install the package that provides it, or put {module_name.replace('.', '/')}.py in the model folder."
        ) from None


def import_trusted_class(dotted: str, root: Path, where: str) -> type:
    """Import ``module.Class`` from ``root`` or an installed package; the caller has checked trust."""
    module_name, _, class_name = dotted.rpartition(".")
    return _import_custom_class(root, module_name, class_name, None, where)
