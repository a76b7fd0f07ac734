"""Which models ``embedstack serve`` runs: one ``--model``, several (``--model A --model B``), or a models file.

The models file is TOML (``.toml``) or JSON (``.json``), a list of models under ``models``::

    [[models]]
    name = "minilm"                # what requests send as "model" (default: the folder's name)
    path = "/models/all-MiniLM-L6-v2"
    backend = "auto"               # optional, as --backend
    kind = "SentenceTransformer"   # optional: refuse to start if the folder holds another kind

    [[models]]
    name = "reranker"
    path = "/models/ms-marco-MiniLM-L6-v2"
    kind = "CrossEncoder"

Each entry may also set ``device``, ``trust_remote_code``, ``onnx_file`` and ``int8``; what it leaves out comes from
the command line.
"""

from __future__ import annotations

import argparse
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedstack.defaults import DEFAULT_MODEL_NAME, resolve_cli_model
from embedstack.kinds import MODEL_KINDS
from embedstack.modules.transformer.backend_registry import backend_names

ENTRY_KEYS = ("name", "path", "backend", "kind", "device", "trust_remote_code", "onnx_file", "int8")


@dataclass
class ModelEntry:
    """One model to serve: its name, where it comes from, and the command's options with its own settings."""

    name: str
    path: str | None
    options: argparse.Namespace
    kind: str | None = None
    source: str | None = None  # "FILE models[i]" for an entry of a models file

    @property
    def aliases(self) -> set[str]:
        """Other names requests may use: the path or Hub id it was given as."""
        return {self.path} if self.path else {f"sentence-transformers/{DEFAULT_MODEL_NAME}"}


def served_models(args: argparse.Namespace) -> list[ModelEntry]:
    """The models the command's options name, in order.

    Raises:
        ValueError: A models file that cannot be read or holds a bad entry (naming the file, entry and key), or
            more --model-name than --model.
    """
    if getattr(args, "models_file", None):
        if args.model or getattr(args, "model_name", None):
            raise ValueError("Give --model (and --model-name) or --models-file, not both: the file names its models.")
        return [_entry(args, item, f"{args.models_file} models[{index}]") for index, item in _file(args.models_file)]
    paths: list[str | None] = list(args.model or [None])
    names: list[str] = list(args.model_name or [])
    if len(names) > len(paths):
        raise ValueError(f"{len(names)} --model-name for {len(paths)} --model; give one name per model, in order.")
    names += [_default_name(path) for path in paths[len(names) :]]
    return [
        ModelEntry(name, path, argparse.Namespace(**{**vars(args), "model": path})) for name, path in zip(names, paths)
    ]


def _file(path: str) -> list[tuple[int, dict[str, Any]]]:
    file = Path(path)
    toml = file.suffix == ".toml"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"Cannot read the models file {file}: {exc.strerror}.") from exc
    try:
        data = _toml().loads(text) if toml else json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise ValueError(f"The models file {file} is not valid {'TOML' if toml else 'JSON'}: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list) or not models or not all(isinstance(item, dict) for item in models):
        raise ValueError(
            f"The models file {file} must hold a non-empty list 'models' of tables ([[models]] in TOML), each with a "
            "'path' and optionally 'name', 'backend', 'kind'."
        )
    return list(enumerate(models))


def _entry(args: argparse.Namespace, item: dict[str, Any], where: str) -> ModelEntry:
    unknown = sorted(set(item) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; the keys are {list(ENTRY_KEYS)}.")
    path = item.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where} needs 'path': a model folder or Hub id.")
    kind = item.get("kind")
    if kind is not None and kind not in MODEL_KINDS:
        raise ValueError(f"{where} key 'kind' is {kind!r}; it must be one of {sorted(MODEL_KINDS)}.")
    options = {**vars(args), "model": path}
    for key in ("backend", "device", "trust_remote_code", "onnx_file", "int8"):
        if key in item:
            options[key] = _checked(item[key], key, where)
    name = item.get("name", _default_name(path))
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where} key 'name' must be a non-empty string, got {name!r}.")
    return ModelEntry(name, path, argparse.Namespace(**options), kind, where)


def _checked(value: Any, key: str, where: str) -> Any:
    """An entry's option, of the type its command-line flag gives (a string "false" is not False)."""
    if key in ("trust_remote_code", "int8"):
        if not isinstance(value, bool):
            raise ValueError(f"{where} key {key!r} must be true or false, got {value!r}.")
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} key {key!r} must be a non-empty string, got {value!r}.")
    if key == "backend" and value not in backend_names():
        raise ValueError(f"{where} key 'backend' is {value!r}; it must be one of {backend_names()}.")
    return value


def _toml() -> Any:
    """The standard library's TOML reader (Python 3.11+), else the ``tomli`` package."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ValueError("Reading a TOML models file needs Python 3.11+ or 'pip install tomli'; or write it as JSON.")


def _default_name(path: str | None) -> str:
    if path is None or resolve_cli_model(path) != path:
        return DEFAULT_MODEL_NAME
    return Path(path.rstrip("/")).name
