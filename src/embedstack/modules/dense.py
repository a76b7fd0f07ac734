"""Dense: a linear layer and an activation over the sentence embedding."""

from __future__ import annotations

import importlib
import os
from typing import Any

import torch
from torch import nn

from embedstack.errors import ModelFormatError, UntrustedCodeError
from embedstack.modules.base import ModuleWithWeights, check_feature_name, read_feature
from embedstack.registry import ST, register_module

_DEFAULT_ACTIVATION: Any = object()  # stands for a fresh nn.Tanh() per instance


def activation_path(activation: nn.Module) -> str:
    """The dotted class path written for an activation, e.g. ``torch.nn.modules.activation.Tanh``."""
    return f"{type(activation).__module__}.{type(activation).__qualname__}"


def resolve_activation(
    path: str, *, trust_remote_code: bool = False, where: str = "Dense activation_function"
) -> nn.Module:
    """Instantiate the activation class at ``path``; only ``torch.*`` classes without ``trust_remote_code``.

    ``where`` (e.g. "<folder>/config.json key 'activation_function'") starts each error message.
    """
    if not isinstance(path, str) or "." not in path:
        raise ModelFormatError(
            f"{where} {path!r} is not a dotted class path such as "
            "'torch.nn.modules.activation.Tanh'. Fix the value in the Dense config.json."
        )
    if not path.startswith("torch.") and not trust_remote_code:
        raise UntrustedCodeError(
            f"{where} {path!r} is not a torch class; importing it would run code outside torch. "
            "Pass trust_remote_code=True if you trust this model, or change it to a torch.nn activation."
        )
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise ModelFormatError(
            f"{where} {path!r} does not name an importable class. "
            "Use a torch.nn activation such as 'torch.nn.modules.activation.Tanh'."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelFormatError(
            f"{where} {path!r} is not a torch.nn.Module class. "
            "Use a torch.nn activation such as 'torch.nn.modules.activation.Tanh'."
        )
    return cls()


@register_module(f"{ST}.base.modules.dense.Dense", legacy=True)
class Dense(ModuleWithWeights):
    """``activation(linear(x))`` over ``features[module_input_name]``, with an optional residual.

    Args:
        in_features: Input width.
        out_features: Output width.
        bias: Whether the linear layer has a bias.
        activation_function: An ``nn.Module`` instance (default ``Tanh``); None means identity.
        init_weight: Optional initial weight, shape (out_features, in_features).
        init_bias: Optional initial bias, shape (out_features,).
        module_input_name: Feature to read.
        module_output_name: Feature to write (defaults to the input name).
        use_residual: Add the input (projected when the widths differ) to the output.
    """

    config_keys = [
        "in_features",
        "out_features",
        "bias",
        "activation_function",
        "module_input_name",
        "module_output_name",
        "use_residual",
    ]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: nn.Module | None = _DEFAULT_ACTIVATION,
        init_weight: torch.Tensor | None = None,
        init_bias: torch.Tensor | None = None,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
        use_residual: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Dense {name} must be a positive int, got {value!r}")
        check_feature_name("Dense", "module_input_name", module_input_name)
        check_feature_name("Dense", "module_output_name", module_output_name, optional=True)
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bool(bias)
        if activation_function is _DEFAULT_ACTIVATION:
            activation_function = nn.Tanh()
        self.activation_function = activation_function if activation_function is not None else nn.Identity()
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name
        self.use_residual = bool(use_residual)
        self.linear = nn.Linear(in_features, out_features, bias=self.bias)
        if init_weight is not None:
            self.linear.weight = nn.Parameter(init_weight)
        if init_bias is not None:
            self.linear.bias = nn.Parameter(init_bias)
        if self.use_residual and in_features != out_features:
            self.residual = nn.Linear(in_features, out_features, bias=False)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Write ``activation(linear(x))`` (plus the residual) to ``module_output_name``."""
        x = read_feature(features, self.module_input_name, "Dense")  # (batch, in_features)
        out = self.activation_function(self.linear(x))  # (batch, out_features)
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        features[self.module_output_name] = out
        return features

    def get_embedding_dimension(self) -> int | None:
        """``out_features`` when this layer writes the sentence embedding; None when it writes another feature."""
        return self.out_features if self.module_output_name == "sentence_embedding" else None

    def get_config_dict(self) -> dict[str, Any]:
        """The config, with the activation as its dotted class path."""
        config = super().get_config_dict()
        config["activation_function"] = activation_path(self.activation_function)
        if not self.use_residual:
            del config["use_residual"]  # readers before sentence-transformers 5.7 reject the key
        return config

    def legacy_config(self) -> tuple[str | None, dict[str, Any]]:
        """sentence-transformers < 5 read only the layer's shape and activation."""
        config = self.get_config_dict()
        return "config.json", {
            key: config[key] for key in ("in_features", "out_features", "bias", "activation_function")
        }

    @classmethod
    def load(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        *,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> Dense:
        """Build the layer from its config and weights; a non-torch activation needs ``trust_remote_code``."""
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        where = f"{model_name_or_path}/{subfolder}/{cls.config_file_name}"
        missing = [key for key in ("in_features", "out_features") if key not in config]
        if missing:
            raise ModelFormatError(f"{where} lacks the keys {missing}. Restore the file from the original model.")
        activation = config.get("activation_function")
        if activation is not None and not isinstance(activation, str):
            raise ModelFormatError(
                f"{where} key 'activation_function' must be a dotted class path such as "
                f"'torch.nn.modules.activation.Tanh', got {activation!r}."
            )
        if isinstance(activation, str):
            config["activation_function"] = resolve_activation(
                config["activation_function"],
                trust_remote_code=trust_remote_code,
                where=f"{where} key 'activation_function'",
            )
        known = set(cls.config_keys)
        config = {key: value for key, value in config.items() if key in known}
        try:
            module = cls(**config)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(f"{where} holds invalid Dense settings: {exc}") from None
        return cls.load_torch_weights(model_name_or_path, subfolder, model=module)
