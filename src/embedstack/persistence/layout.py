"""Reading and writing the model-level files: ``modules.json`` and ``config_sentence_transformers.json``."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from embedstack._version import __version__
from embedstack.errors import ModelFormatError
from embedstack.fileio import check_module_path, read_json, write_json
from embedstack.similarity import SIMILARITY_FN_NAMES

logger = logging.getLogger(__name__)

MODULES_FILE = "modules.json"
MODEL_CONFIG_FILE = "config_sentence_transformers.json"
MODEL_TYPE = "SentenceTransformer"
# The sentence-transformers release whose format we write.
FORMAT_VERSION = "6.2.0"


@dataclass
class ModuleEntry:
    """One validated ``modules.json`` entry."""

    index: int
    name: str
    path: str
    type: str
    kwargs: list[str] = field(default_factory=list)


def read_modules_json(folder: Path) -> list[ModuleEntry] | None:
    """The entries of ``folder/modules.json``, or None when the file is absent."""
    file = folder / MODULES_FILE
    if not file.is_file():
        return None
    raw = read_json(file)
    if not isinstance(raw, list) or not raw:
        raise ModelFormatError(
            f"{file} must hold a non-empty JSON list of modules, but holds {json.dumps(raw)[:80]}. "
            "Restore modules.json from the original model."
        )
    entries = []
    for index, item in enumerate(raw):
        where = f"{file} entry {index}"
        if not isinstance(item, dict):
            raise ModelFormatError(f"{where} must be a JSON object with 'path' and 'type', got {item!r}.")
        for key in ("path", "type"):
            if not isinstance(item.get(key), str):
                raise ModelFormatError(f"{where} has no string {key!r} (got {item.get(key)!r}). Fix modules.json.")
        kwargs = item.get("kwargs", [])
        if not isinstance(kwargs, list) or not all(isinstance(k, str) for k in kwargs):
            raise ModelFormatError(f"{where} key 'kwargs' must be a list of names, got {kwargs!r}.")
        check_module_path(folder, item["path"], where)
        name = item.get("name", index)
        if isinstance(name, bool) or not isinstance(name, (str, int)) or not str(name) or "." in str(name):
            raise ModelFormatError(
                f"{where} has name {name!r}; a module name must be a non-empty string without '.', e.g. \"{index}\"."
            )
        name = str(name)
        entries.append(ModuleEntry(index, name, item["path"], item["type"], kwargs))
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise ModelFormatError(f"{file} uses a module name twice ({names}); each 'name' must be unique.")
    return entries


def write_modules_json(folder: Path, entries: list[dict[str, Any]]) -> None:
    """Write ``modules.json`` into ``folder``."""
    write_json(folder / MODULES_FILE, entries)


def saved_model_type(folder: Path) -> str:
    """The model kind a local folder holds, as a class name: "SentenceTransformer", "CrossEncoder", ...

    ``config_sentence_transformers.json``'s ``model_type`` when it names one; else, for a folder without
    ``modules.json`` whose ``config.json`` names a ``*ForSequenceClassification`` architecture (a Hugging Face
    classifier, or a cross-encoder saved by sentence-transformers before 6), "CrossEncoder"; else
    "SentenceTransformer".
    """
    model_type = read_model_config(folder).get("model_type")
    if isinstance(model_type, str) and model_type:
        return model_type
    config_file = folder / "config.json"
    if not (folder / MODULES_FILE).is_file() and config_file.is_file():
        config = read_json(config_file)
        architectures = config.get("architectures") if isinstance(config, dict) else None
        if any(str(name).endswith("ForSequenceClassification") for name in architectures or []):
            return "CrossEncoder"
    return MODEL_TYPE


# Similarity names the reference's other model kinds save; loading such a folder converts it, which drops its config.
FOREIGN_SIMILARITY_FN_NAMES: dict[str, tuple[str, ...]] = {"MultiVectorEncoder": ("maxsim",)}


def read_model_config(folder: Path) -> dict[str, Any]:
    """``config_sentence_transformers.json`` as a dict (``{}`` when absent), with its requirements checked."""
    file = folder / MODEL_CONFIG_FILE
    if not file.is_file():
        return {}
    config = read_json(file)
    if not isinstance(config, dict):
        raise ModelFormatError(f"{file} must hold a JSON object, got {type(config).__name__}.")
    for key, kind in (
        ("prompts", dict),
        ("default_prompt_name", (str, type(None))),
        ("truncate_dim", (int, type(None))),
    ):
        if key in config and not isinstance(config[key], kind):
            raise ModelFormatError(f"{file} key {key!r} has the wrong type ({config[key]!r}). Fix the file.")
    similarity = config.get("similarity_fn_name")
    foreign = FOREIGN_SIMILARITY_FN_NAMES.get(str(config.get("model_type")), ())
    if similarity is not None and similarity not in SIMILARITY_FN_NAMES and similarity not in foreign:
        raise ModelFormatError(
            f"{file} key 'similarity_fn_name' is {similarity!r}, which is not one of {list(SIMILARITY_FN_NAMES)}. "
            "Fix the file (or remove the key for cosine)."
        )
    if isinstance(config.get("prompts"), dict):
        bad = {k: v for k, v in config["prompts"].items() if not isinstance(v, str)}
        if bad:
            raise ModelFormatError(f"{file} key 'prompts' holds non-string prompts {bad}. Fix the file.")
    name, prompts = config.get("default_prompt_name"), config.get("prompts")
    if name is not None and isinstance(prompts, dict) and name not in prompts:
        raise ModelFormatError(
            f"{file} key 'default_prompt_name' is {name!r}, which is not one of its prompts {sorted(prompts)}. "
            "Fix the name or add the prompt."
        )
    check_requirements(config.get("requirements") or {}, file)
    return config


def check_requirements(requirements: dict[str, Any], file: Path) -> None:
    """Raise ImportError when an installed package (or Python) does not meet a saved requirement."""
    for package, spec in requirements.items():
        reason = ""
        if isinstance(spec, dict):
            spec, reason = spec.get("specifier", ""), spec.get("reason", "")
        try:
            specifier = SpecifierSet(str(spec))
        except InvalidSpecifier:
            logger.warning("Ignoring the invalid requirement %s%s in %s", package, spec, file)
            continue
        name = "torch" if package == "pytorch" else package
        if name == "python":
            installed = ".".join(map(str, sys.version_info[:3]))
        else:
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed = None
        if installed is None or installed not in specifier:
            raise ImportError(
                f"{file} requires {name}{specifier} ({reason or 'no reason given'}), but "
                f"{'it is not installed' if installed is None else f'{installed} is installed'}. "
                f"Run: pip install '{name}{specifier}'"
            )


def model_config_dict(
    prompts: dict[str, str],
    default_prompt_name: str | None,
    *,
    model_type: str = MODEL_TYPE,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The contents of ``config_sentence_transformers.json`` as sentence-transformers 6.2 writes them.

    ``settings`` are the model kind's own keys (e.g. ``similarity_fn_name``); those set to None are left out.
    """
    versions = {
        "sentence_transformers": FORMAT_VERSION,
        "embedstack": __version__,
        "transformers": _version("transformers"),
        "pytorch": _version("torch"),
    }
    config: dict[str, Any] = {
        "__version__": versions,
        "model_type": model_type,
        "prompts": prompts,
        "default_prompt_name": default_prompt_name,
    }
    config.update({key: value for key, value in (settings or {}).items() if value is not None})
    return config


def write_model_config(folder: Path, config: dict[str, Any]) -> None:
    """Write ``config_sentence_transformers.json`` into ``folder`` (keys sorted)."""
    write_json(folder / MODEL_CONFIG_FILE, config, sort_keys=True)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
