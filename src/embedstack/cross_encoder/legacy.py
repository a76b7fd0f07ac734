"""The CrossEncoder arguments of older sentence-transformers releases, renamed to today's (with a warning)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# Before 4.0 these followed the model name positionally.
_POSITIONAL = ("num_labels", "max_length", "activation_fn", "device")
_INIT_RENAMES = {
    "model_name": "model_name_or_path",
    "automodel_args": "model_kwargs",
    "tokenizer_args": "processor_kwargs",
    "tokenizer_kwargs": "processor_kwargs",
    "config_args": "config_kwargs",
    "cache_dir": "cache_folder",
    "default_activation_function": "activation_fn",
}
_CALL_RENAMES = {"sentences": "inputs", "activation_fct": "activation_fn"}


def legacy_init_args(init: F) -> F:
    """Accept ``CrossEncoder``'s old positional and renamed arguments, as sentence-transformers 6.2 does."""

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        for name, value in zip(_POSITIONAL, args[1:]):
            logger.warning(
                "Passing `%s` as a positional argument to CrossEncoder is deprecated. Please use `%s=%r` as a keyword "
                "argument instead.",
                name,
                name,
                value,
            )
            kwargs.setdefault(name, value)
        if len(args) > 1 + len(_POSITIONAL):
            raise TypeError(f"CrossEncoder takes at most {1 + len(_POSITIONAL)} positional arguments.")
        _rename(kwargs, _INIT_RENAMES, "The CrossEncoder")
        if "classifier_dropout" in kwargs:
            dropout = kwargs.pop("classifier_dropout")
            logger.warning(
                "The CrossEncoder `classifier_dropout` argument is deprecated. Please use "
                "`config_kwargs={'classifier_dropout': %r}` instead.",
                dropout,
            )
            kwargs["config_kwargs"] = {**(kwargs.get("config_kwargs") or {}), "classifier_dropout": dropout}
        return init(self, *args[:1], **kwargs)

    return wrapper  # type: ignore[return-value]


def legacy_predict_args(method: F) -> F:
    """Accept ``predict``/``rank``'s renamed and retired arguments (``sentences``, ``activation_fct``, ...)."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        _rename(kwargs, _CALL_RENAMES, f"The CrossEncoder.{name}")
        retired = ["num_workers"]
        if name == "rank":
            retired += ["apply_softmax", "convert_to_numpy", "convert_to_tensor"]
        for key in retired:
            if key in kwargs:
                kwargs.pop(key)
                logger.warning("The CrossEncoder.%s `%s` argument is deprecated and has no effect.", name, key)
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _rename(kwargs: dict[str, Any], renames: dict[str, str], where: str) -> None:
    for old, new in renames.items():
        if old in kwargs:
            value = kwargs.pop(old)
            logger.warning(
                "%s `%s` argument was renamed and is now deprecated. Please use `%s` instead.", where, old, new
            )
            kwargs.setdefault(new, value)
