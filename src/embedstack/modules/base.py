"""The module contract: ``Module`` (any step of the stack) and ``InputModule`` (the first step).

The contract is the seed's: ``forward(features, **kwargs)``, ``save(output_path, safe_serialization=True)``,
a ``load`` classmethod that by default builds the module from its ``config_keys`` config file, and the
``save_config`` / ``save_torch_weights`` / ``load_torch_weights`` helpers.
"""

from __future__ import annotations

import logging
import os
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, TypeVar, overload

import torch
from safetensors.torch import load_file, save_model

from embedstack.errors import ModelFormatError, ModelNotFoundError
from embedstack.fileio import read_json, write_json

logger = logging.getLogger(__name__)

WEIGHTS_SAFETENSORS = "model.safetensors"
WEIGHTS_PICKLE = "pytorch_model.bin"
_DEPRECATED_DIMENSION_ALIASES = ("get_sentence_embedding_dimension", "get_word_embedding_dimension")
TorchModuleT = TypeVar("TorchModuleT", bound=torch.nn.Module)


def check_feature_name(owner: str, key: str, value: Any, *, optional: bool = False) -> None:
    """Raise ValueError unless ``value`` is a feature name (a non-empty string; None too when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{owner} {key} must be a feature name such as 'sentence_embedding', got {value!r}")


def read_feature(features: dict[str, Any], name: str, owner: str) -> Any:
    """``features[name]``, or a ModelFormatError saying which feature is missing and which exist."""
    if name not in features:
        raise ModelFormatError(
            f"{owner} reads the feature {name!r}, which the modules before it did not produce (they produced "
            f"{sorted(map(str, features))}). Fix module_input_name in the module's config."
        )
    return features[name]


def module_dir(model_name_or_path: str | os.PathLike[str], subfolder: str = "") -> Path:
    """The local folder of a module.

    Modules read local folders only: the model resolves a Hub id to a folder (persistence/hub.py) before any
    module loads.
    """
    path = Path(model_name_or_path) / subfolder if subfolder else Path(model_name_or_path)
    if not path.is_dir():
        raise ModelNotFoundError(
            f"{path} is not a folder. Modules load from a local folder; to load a model from the Hugging Face Hub, "
            f"load the whole model with SentenceTransformer({str(model_name_or_path)!r}), which downloads it first."
        )
    return path


class Module(ABC, torch.nn.Module):
    """One step of a model: takes the features dict and returns it with its own outputs added.

    Subclasses implement ``forward``, and ``save`` when they have weights or files of their own (the default writes
    the config). List the constructor arguments to serialize in ``config_keys``; the default ``load`` reads them
    back from ``config_file_name`` and calls ``cls(**config)``. Old spellings of the file are data:
    ``legacy_config_file_names``, ``config_key_renames``, and :meth:`adapt_config` for anything more.
    """

    config_file_name: str = "config.json"
    legacy_config_file_names: tuple[str, ...] = ()  # read, in order, when config_file_name is absent
    config_keys: list[str] = []
    config_key_renames: dict[str, str] = {}
    save_in_root: bool = False
    forward_kwargs: set[str] = set()

    @abstractmethod
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Read from and write to ``features``; return it."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write this module's config into ``output_path`` (its :meth:`legacy_config` with ``legacy_layout``).

        Modules with weights or files of their own override this (and may call it for the config).
        """
        self.save_config(output_path, legacy_layout=bool(kwargs.get("legacy_layout")))

    def get_config_dict(self) -> dict[str, Any]:
        """The values of ``config_keys``: what ``save_config`` writes and ``load`` passes to ``__init__``."""
        return {key: getattr(self, key) for key in self.config_keys}

    def legacy_config(self) -> tuple[str | None, dict[str, Any]] | None:
        """The (file name, contents) this module wrote before sentence-transformers 5, for a legacy layout.

        None keeps the current config; a None file name writes no config file. Built-ins with an older spelling
        override this; it is read nowhere else.
        """
        return None

    def save_config(
        self, output_path: str | os.PathLike[str], filename: str | None = None, *, legacy_layout: bool = False
    ) -> None:
        """Write :meth:`get_config_dict` as JSON (indent 4) to ``output_path/filename``.

        With ``legacy_layout`` the module's :meth:`legacy_config` is written instead, when it has one.
        """
        legacy = self.legacy_config() if legacy_layout else None
        if legacy is not None:
            legacy_name, contents = legacy
            if legacy_name is not None:
                write_json(Path(output_path) / legacy_name, contents)
            return
        write_json(Path(output_path) / (filename or self.config_file_name), self.get_config_dict(), indent=4)

    def save_torch_weights(self, output_path: str | os.PathLike[str], *, safe_serialization: bool = True) -> None:
        """Write the state dict as ``model.safetensors`` (or ``pytorch_model.bin`` when not safe)."""
        if safe_serialization:
            save_model(self, str(Path(output_path) / WEIGHTS_SAFETENSORS))
        else:
            torch.save(self.state_dict(), Path(output_path) / WEIGHTS_PICKLE)

    @classmethod
    def load_config(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        config_filename: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Read the module's config file (``{}`` when there is none), keys renamed, through :meth:`adapt_config`.

        Without ``config_filename``, the file is ``config_file_name`` or else the first of
        ``legacy_config_file_names`` that exists.
        """
        if config_filename is None:
            names = (cls.config_file_name, *cls.legacy_config_file_names)
            found = (name for name in names if cls.load_file_path(model_name_or_path, name, subfolder=subfolder))
            config_filename = next(found, cls.config_file_name)
        path = cls.load_file_path(model_name_or_path, config_filename, subfolder=subfolder)
        config = read_json(path) if path is not None else {}
        if not isinstance(config, dict):
            raise ModelFormatError(
                f"{path} must hold a JSON object of {cls.__name__} settings, but holds a {type(config).__name__}. "
                "Restore the file from the original model."
            )
        for old, new in cls.config_key_renames.items():
            if old in config:
                value = config.pop(old)
                config.setdefault(new, value)
        return cls.adapt_config(config)

    @classmethod
    def adapt_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The config as read (``config_key_renames`` applied) made into what ``__init__`` takes; ``{}`` if absent.

        The hook for older spellings beyond renamed keys (Pooling's ``pooling_mode_*`` flags, the Transformer's
        legacy kwargs). The default returns ``config`` as it is.
        """
        return config

    @classmethod
    def load(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        *,
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Module:
        """Build the module from its config file: ``cls(**config)``, with ``init_defaults`` for absent keys.

        ``model_name_or_path`` is a local folder. Other keywords (``trust_remote_code``, ``model_kwargs``, and the
        Hub options ``token`` / ``revision`` / ... that sentence-transformers passes) are accepted and unused here.
        """
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        for key, value in (init_defaults or {}).items():
            config.setdefault(key, value)
        try:
            return cls(**config)
        except TypeError as exc:
            where = Path(model_name_or_path) / subfolder / cls.config_file_name
            raise ModelFormatError(
                f"{where} does not fit {cls.__name__}: {exc}. Expected keys: {cls.config_keys}. "
                "Remove or rename the offending keys."
            ) from None

    @staticmethod
    def load_file_path(
        model_name_or_path: str | os.PathLike[str], filename: str, subfolder: str = "", **kwargs: Any
    ) -> str | None:
        """The local path of ``filename`` in the module folder, or None when the file (or folder) is absent."""
        path = Path(model_name_or_path, subfolder, filename)
        return str(path) if path.is_file() else None

    @staticmethod
    def load_dir_path(model_name_or_path: str | os.PathLike[str], subfolder: str = "", **kwargs: Any) -> str:
        """The local folder of the module."""
        return str(module_dir(model_name_or_path, subfolder))

    @overload
    @classmethod
    def load_torch_weights(
        cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", *, model: None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]: ...

    @overload
    @classmethod
    def load_torch_weights(
        cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", *, model: TorchModuleT, **kwargs: Any
    ) -> TorchModuleT: ...

    @classmethod
    def load_torch_weights(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        *,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor] | torch.nn.Module:
        """Load ``model.safetensors`` (or, when absent, ``pytorch_model.bin`` with weights-only unpickling).

        With ``model`` the weights are loaded into it and it is returned; otherwise the state dict is returned.
        Missing or unexpected keys raise :class:`ModelFormatError` naming the file and the keys.
        """
        folder = module_dir(model_name_or_path, subfolder)
        safetensors_path = folder / WEIGHTS_SAFETENSORS
        pickle_path = folder / WEIGHTS_PICKLE
        if safetensors_path.is_file():
            try:
                state_dict, source = load_file(str(safetensors_path)), safetensors_path
            except Exception as exc:  # safetensors raises its own SafetensorError for damaged files
                raise ModelFormatError(
                    f"{safetensors_path} could not be read ({exc}). Restore the file from the original model."
                ) from None
        elif pickle_path.is_file():
            try:
                state_dict, source = torch.load(pickle_path, map_location="cpu", weights_only=True), pickle_path
            except Exception as exc:
                reason = " ".join(str(exc).split())[:160]
                raise ModelFormatError(
                    f"{pickle_path} could not be loaded with weights-only unpickling ({reason}...). It is damaged or "
                    "holds objects other than tensors, which embedstack refuses to unpickle. Convert it to "
                    "model.safetensors with the library that wrote it."
                ) from None
        else:
            raise ModelFormatError(
                f"{folder} has no {WEIGHTS_SAFETENSORS} or {WEIGHTS_PICKLE}, so {cls.__name__} has no weights. "
                "Restore the weights file from the original model."
            )
        if model is None:
            return state_dict
        _load_state_dict_checked(model, state_dict, source)
        return model

    def __getattr__(self, name: str) -> Any:
        if name in _DEPRECATED_DIMENSION_ALIASES and "get_embedding_dimension" in dir(type(self)):
            warnings.warn(
                f"{name}() is deprecated; use get_embedding_dimension() instead.", FutureWarning, stacklevel=2
            )
            return self.get_embedding_dimension
        return super().__getattr__(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"


class ModuleWithWeights(Module):
    """A :class:`Module` saved as its ``config_keys`` config plus a weights file: ``save`` and ``load`` included."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config and the weights (from CPU: safetensors cannot write some device storages)."""
        super().save(output_path, safe_serialization=safe_serialization, **kwargs)
        device = next((p.device for p in self.parameters()), None)
        self.cpu()  # safetensors cannot write some non-CPU storages (LSTM weights)
        try:
            self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        finally:
            if device is not None:
                self.to(device)

    @classmethod
    def load(cls, model_name_or_path: str | os.PathLike[str], subfolder: str = "", **kwargs: Any) -> Module:
        """Build the module from its config file, then load its weights (shapes checked against the config)."""
        module = super().load(model_name_or_path, subfolder=subfolder, **kwargs)
        return cls.load_torch_weights(model_name_or_path, subfolder=subfolder, model=module)


def _load_state_dict_checked(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ModelFormatError(
            f"{source} does not match {type(model).__name__}: missing keys {missing}, unexpected keys "
            f"{unexpected}. The weights belong to a different configuration; check the module's config file."
        )
    bad_shapes = [
        f"{key}: file {tuple(value.shape)} vs config {tuple(expected[key].shape)}"
        for key, value in state_dict.items()
        if tuple(value.shape) != tuple(expected[key].shape)
    ]
    if bad_shapes:
        raise ModelFormatError(
            f"{source} has tensors whose shapes do not match the module's config ({'; '.join(bad_shapes)}). "
            "The config file and the weights come from different models."
        )
    model.load_state_dict(state_dict, strict=True)


class InputModule(Module):
    """The first module of a stack: turns raw inputs into tensors with :meth:`preprocess`."""

    save_in_root: bool = True
    tokenizer: Any = None

    @property
    def modalities(self) -> list[str | tuple[str, ...]]:
        """The input modalities this module accepts. Defaults to text only."""
        return ["text"]

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turn a batch of raw inputs into the features dict that :meth:`forward` expects.

        The base version supports modules written against the deprecated ``tokenize`` API: it prepends the
        prompt to each text and calls ``tokenize``. New modules override this method.
        """
        if type(self).tokenize is not InputModule.tokenize:
            if prompt:
                inputs = self._prepend_prompt(inputs, prompt)
            return self.tokenize(inputs, **kwargs)
        raise NotImplementedError(f"{type(self).__name__} must implement preprocess(inputs, prompt=None, **kwargs).")

    def tokenize(self, texts: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Deprecated: use :meth:`preprocess`."""
        warnings.warn("tokenize() is deprecated; use preprocess() instead.", DeprecationWarning, stacklevel=2)
        return self.preprocess(texts, **kwargs)

    def save_tokenizer(self, output_path: str | os.PathLike[str], **kwargs: Any) -> None:
        """Save the tokenizer (a Hugging Face tokenizer or a ``tokenizers.Tokenizer``) into ``output_path``."""
        if self.tokenizer is None:
            return
        if hasattr(self.tokenizer, "save_pretrained"):
            self.tokenizer.save_pretrained(str(output_path))
        else:
            self.tokenizer.save(str(Path(output_path) / "tokenizer.json"))

    @staticmethod
    def _prepend_prompt(inputs: list[Any], prompt: str) -> list[Any]:
        out: list[Any] = []
        for item in inputs:
            if isinstance(item, str):
                out.append(prompt + item)
            elif isinstance(item, (tuple, list)) and item and isinstance(item[0], str):
                out.append(type(item)([prompt + item[0], *item[1:]]))
            else:
                out.append(item)
        return out
