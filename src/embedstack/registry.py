"""Module type strings <-> classes.

Our built-ins answer to the type strings sentence-transformers writes, current and legacy. Any other type is
code from outside embedstack: it is imported only with ``trust_remote_code=True``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from embedstack.errors import UnknownModuleTypeError, UntrustedCodeError, close_matches
from embedstack.persistence.legacy import CURRENT_TYPE_NAMES, TYPE_ALIASES, legacy_type_name

_SOURCE_ATTR = "__embedstack_source_file__"


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
    source = getattr(cls, _SOURCE_ATTR, None)
    if source is not None:  # loaded as remote code from a model folder
        return f"{Path(source).stem}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def resolve_module_class(type_name: str, *, model_path: Path, trust_remote_code: bool, where: str) -> type:
    """The class for a ``modules.json`` type string; ``where`` names the entry in errors."""
    if not isinstance(type_name, str) or not type_name:
        raise UnknownModuleTypeError(f"{where} has no 'type' string. Restore modules.json from the original model.")
    builtins = builtin_modules()
    if type_name in TYPE_ALIASES:
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
    if not trust_remote_code:
        raise UntrustedCodeError(
            f"{where} names type {type_name!r}, which is not a built-in module. Loading it would run code from "
            f"{_describe_code_source(type_name, model_path)}. Pass trust_remote_code=True if you trust this model."
        )
    return _import_custom_class(type_name, model_path, where)


def _describe_code_source(type_name: str, model_path: Path) -> str:
    module_name, _, class_name = type_name.rpartition(".")
    local_file = model_path / f"{module_name}.py"
    if local_file.is_file():
        return f"class {class_name} in {local_file}"
    return f"class {class_name} of the Python module {module_name!r}"


def _import_custom_class(type_name: str, model_path: Path, where: str) -> type:
    module_name, _, class_name = type_name.rpartition(".")
    local_file = model_path / f"{module_name}.py"
    try:
        if "." not in module_name and local_file.is_file():
            module = _import_file(local_file)
        else:
            module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise UnknownModuleTypeError(
            f"{where} names type {type_name!r}, which could not be imported ({exc}). Install the package that "
            f"provides it, or put {module_name}.py in the model folder."
        ) from None
    return cls


def _import_file(path: Path):
    unique = f"embedstack_remote_{abs(hash(str(path.resolve())))}_{path.stem}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    for value in vars(module).values():
        if isinstance(value, type) and value.__module__ == unique:
            setattr(value, _SOURCE_ATTR, str(path))
    return module
