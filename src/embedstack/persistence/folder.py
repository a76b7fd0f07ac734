"""Saving a model to a folder and building its modules back from one."""

from __future__ import annotations

import inspect
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedstack.errors import EmbedstackError, ModelFormatError, UntrustedCodeError
from embedstack.modules import Pooling, Transformer
from embedstack.persistence.atomic import atomic_folder
from embedstack.persistence.layout import (
    MODEL_TYPE,
    check_module_path,
    read_model_config,
    read_modules_json,
    write_model_config,
    write_modules_json,
)
from embedstack.persistence.legacy import legacy_module_config
from embedstack.registry import builtin_modules, resolve_module_class, type_name_for
from embedstack.remote_code import code_ref_of, copy_code

logger = logging.getLogger(__name__)


@dataclass
class LoadedFolder:
    """What a model folder holds: its modules, per-module forward kwargs, model config and model card."""

    modules: OrderedDict
    module_kwargs: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    card_text: str | None = None


def load_folder(folder: Path, *, trust_remote_code: bool = False, **load_kwargs: Any) -> LoadedFolder:
    """Build the modules of the model in ``folder``.

    ``load_kwargs`` (model_kwargs, processor_kwargs, config_kwargs, backend, ...) go to every module's ``load``,
    which takes what it needs.
    """
    config = read_model_config(folder)
    card = folder / "README.md"
    card_text = card.read_text(encoding="utf-8", errors="replace") if card.is_file() else None
    entries = read_modules_json(folder)
    model_type = config.get("model_type", MODEL_TYPE)
    if entries is None or model_type != MODEL_TYPE:
        if entries is not None:
            logger.warning(
                "Converting the %s model in %s to a SentenceTransformer (Transformer + Pooling)", model_type, folder
            )
            config = {}
        return LoadedFolder(
            default_modules(folder, trust_remote_code=trust_remote_code, **load_kwargs), {}, config, card_text
        )
    modules: OrderedDict = OrderedDict()
    module_kwargs: dict[str, list[str]] = {}
    for entry in entries:
        where = f"{folder / 'modules.json'} entry {entry.index}"
        modules[entry.name] = load_module_from(
            folder, entry.path, entry.type, where=where, trust_remote_code=trust_remote_code, **load_kwargs
        )
        module_kwargs[entry.name] = entry.kwargs
    first = next(iter(modules.values()))
    if not (callable(getattr(first, "preprocess", None)) or callable(getattr(first, "tokenize", None))):
        raise ModelFormatError(
            f"{folder / 'modules.json'} starts with a {type(first).__name__}, which cannot take raw inputs; the "
            "first module must be an input module (Transformer, StaticEmbedding, Router, ...). Fix modules.json."
        )
    return LoadedFolder(modules, module_kwargs, config, card_text)


def load_module_from(
    folder: Path, subfolder: str, type_name: str, *, where: str, trust_remote_code: bool = False, **load_kwargs: Any
) -> Any:
    """Build the module of type ``type_name`` saved in ``folder/subfolder``; ``where`` names it in errors."""
    check_module_path(folder, subfolder, where)
    cls = resolve_module_class(
        type_name,
        model_path=folder,
        module_path=folder / subfolder,
        trust_remote_code=trust_remote_code,
        where=where,
    )
    load_kwargs = dict(load_kwargs)
    module = _native_module(folder / subfolder, load_kwargs) if cls is Transformer else None
    return module or _load_module(cls, folder, subfolder, trust_remote_code, load_kwargs)


def _native_module(folder: Path, load_kwargs: dict[str, Any]):
    """With backend "native" (or "auto"), a plain BERT folder runs without transformers; see backends/native.py."""
    backend = load_kwargs.get("backend", "torch")
    if backend not in ("native", "auto"):
        return None
    load_kwargs["backend"] = "torch"  # what the Transformer module gets if the native one cannot be used
    if load_kwargs.get("model_kwargs") or load_kwargs.get("processor_kwargs") or load_kwargs.get("config_kwargs"):
        module = None
    else:
        from embedstack.backends.native import native_input_module

        module = native_input_module(folder)
    if module is None and backend == "native":
        raise ValueError(
            f"backend='native' runs plain BERT folders (with tokenizer.json and model.safetensors, and no "
            f"model/processor/config kwargs); {folder} is not one. Use backend='torch' or 'auto'."
        )
    return module


def default_modules(folder: Path, *, trust_remote_code: bool = False, **load_kwargs: Any) -> OrderedDict:
    """A plain Hugging Face folder becomes Transformer + Pooling (lasttoken for a causal LM, else mean)."""
    hf = {"trust_remote_code": trust_remote_code}
    native = _native_module(folder, load_kwargs)
    if native is not None:
        return OrderedDict([("0", native), ("1", Pooling(native.get_embedding_dimension(), "mean"))])
    transformer = Transformer(
        str(folder),
        model_kwargs={**hf, **(load_kwargs.get("model_kwargs") or {})},
        processor_kwargs={**hf, **(load_kwargs.get("processor_kwargs") or {})},
        config_kwargs={**hf, **(load_kwargs.get("config_kwargs") or {})},
        backend=load_kwargs.get("backend", "torch"),
    )
    modules = OrderedDict([("0", transformer)])
    if transformer.module_output_name == "token_embeddings":
        architectures = getattr(transformer.config, "architectures", None) or [""]
        causal = (
            architectures[0].endswith("ForCausalLM") and getattr(transformer.config, "is_causal", True) is not False
        )
        modules["1"] = Pooling(transformer.get_embedding_dimension(), "lasttoken" if causal else "mean")
    return modules


def _load_module(cls: type, folder: Path, subfolder: str, trust_remote_code: bool, load_kwargs: dict[str, Any]):
    load = getattr(cls, "load", None)
    if load is None:
        raise ModelFormatError(
            f"{cls.__qualname__} has no load() method, so it cannot be built from {folder / subfolder}."
        )
    params = [p for p in inspect.signature(load).parameters.values() if p.kind is not p.VAR_KEYWORD]
    try:
        if len(params) == 1:  # a legacy module: a plain nn.Module with a static load(path)
            init_kwargs = _old_transformer_init_kwargs(cls, folder / subfolder, trust_remote_code, load_kwargs)
            if init_kwargs is not None:  # an old custom Transformer: built from its config, as the reference does
                return cls(str(folder / subfolder), **init_kwargs)
            return load(str(folder / subfolder))
        return load(str(folder), subfolder=subfolder, trust_remote_code=trust_remote_code, **load_kwargs)
    except (EmbedstackError, ImportError, MemoryError):
        raise
    except Exception as exc:  # anything else from deep inside a loader: say which module folder failed
        raise _load_failure(exc, cls, folder / subfolder) from exc


_OLD_KWARG_NAMES = {"model_kwargs": "model_args", "processor_kwargs": "tokenizer_args", "config_kwargs": "config_args"}


def _old_transformer_init_kwargs(
    cls: type, module_folder: Path, trust_remote_code: bool, load_kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """``__init__`` kwargs for a custom Transformer-like module with an old one-argument ``load`` (such modules,
    e.g. jina-embeddings-v3's, take model/tokenizer/config kwargs): its sentence_bert_config.json, with the
    caller's kwargs and ``trust_remote_code`` added. None for any other module."""
    init = inspect.signature(cls.__init__).parameters
    old_names = {"model_args", "tokenizer_args", "config_args"} & set(init)
    new_names = {"model_kwargs", "config_kwargs"} <= set(init)
    if not (old_names or new_names):
        return None
    config = Transformer.load_config(str(module_folder))
    for key in _OLD_KWARG_NAMES:
        config[key] = {**config.get(key, {}), "trust_remote_code": trust_remote_code, **(load_kwargs.get(key) or {})}
    if old_names and not new_names:
        config = {_OLD_KWARG_NAMES.get(key, key): value for key, value in config.items()}
    if not any(p.kind is p.VAR_KEYWORD for p in init.values()):
        config = {key: value for key, value in config.items() if key in init}
    return config


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


def save_folder(
    model: Any,
    path: str | Path,
    *,
    safe_serialization: bool = True,
    legacy_layout: bool = False,
    card_text: str | None = None,
) -> None:
    """Write ``model`` to ``path`` atomically in the sentence-transformers 6.2 layout (or the legacy one)."""
    with atomic_folder(path) as staging:
        write_model_config(staging, model.model_config_dict())
        entries = []
        for index, (name, module) in enumerate(model.named_children()):
            subfolder = (
                "" if index == 0 and getattr(module, "save_in_root", False) else f"{index}_{type(module).__name__}"
            )
            target = save_module_into(module, staging, subfolder, safe_serialization)
            if legacy_layout:
                _rewrite_legacy_config(module, target)
            entry: dict[str, Any] = {"idx": index, "name": name, "path": subfolder}
            entry["type"] = type_name_for(module, legacy=legacy_layout)
            if model.module_kwargs.get(name):
                entry["kwargs"] = list(model.module_kwargs[name])
            entries.append(entry)
        write_modules_json(staging, entries)
        if card_text is not None:
            (staging / "README.md").write_text(card_text, encoding="utf-8")


def save_module_into(module: Any, parent: Path, subfolder: str, safe_serialization: bool) -> Path:
    """Save ``module`` into ``parent/subfolder`` (created), with the code of a custom module; returns the folder."""
    target = parent / subfolder
    target.mkdir(parents=True, exist_ok=True)
    _save_module(module, target, safe_serialization)
    _copy_remote_code(module, target, parent)
    return target


def _save_module(module: Any, target: Path, safe_serialization: bool) -> None:
    params = inspect.signature(module.save).parameters
    takes_flag = "safe_serialization" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    if takes_flag:
        module.save(str(target), safe_serialization=safe_serialization)
    else:  # legacy plain nn.Module with save(path)
        module.save(str(target))


def _rewrite_legacy_config(module: Any, target: Path) -> None:
    class_name = type(module).__name__
    if builtin_modules().get(class_name) is not type(module):
        return
    legacy = legacy_module_config(class_name, module.get_config_dict(), module)
    if legacy is None:
        return
    filename, contents = legacy
    (target / module.config_file_name).unlink(missing_ok=True)
    if filename:
        with open(target / filename, "w", encoding="utf-8") as handle:
            json.dump(contents, handle, indent=2)


def _copy_remote_code(module: Any, target: Path, root: Path) -> None:
    """Code of a custom module travels with the model: into the model root (where ``module.Class`` types are
    resolved) and the module's folder (where sentence-transformers copies it)."""
    ref = code_ref_of(type(module))
    if ref is None or ref.type_ref is not None:  # not carried, or kept in another Hub repository
        return
    copy_code(ref, list(dict.fromkeys([root, target])))
