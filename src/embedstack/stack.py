"""An ordered stack of modules over a features dict.

The first module turns raw inputs into features, each module then adds its outputs. ``SentenceTransformer`` is
one; this file holds what running the stack needs (what the engine calls).
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from embedstack.engine.protocol import TokenBatcher
from embedstack.errors import ModelFormatError, UnsupportedModalityError
from embedstack.inputs import BatchKinds, Modality, classify_batch, supports
from embedstack.modules.base import InputModule

# encode() keywords meant for the input module's preprocess, which any model takes.
PREPROCESS_KEYWORDS = frozenset({"task", "processing_kwargs"})


class ModuleStack(nn.Sequential):
    """Modules run in order over a features dict.

    ``module_kwargs`` names the ``encode`` keywords each module's forward takes besides the ones it declares
    (from ``modules.json``).
    """

    module_kwargs: dict[str, list[str]]

    @property
    def input_module(self) -> nn.Module:
        """The first module, which turns raw inputs into features."""
        return self[0]

    @property
    def tokenizer(self) -> Any:
        """The input module's tokenizer, or None; setting it sets the input module's."""
        return getattr(self.input_module, "tokenizer", None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        module: Any = self.input_module  # any input module; most have a settable tokenizer
        module.tokenizer = value

    @property
    def processor(self) -> Any:
        """The input module's processor (a multimodal model's), else its tokenizer."""
        return getattr(self.input_module, "processor", self.tokenizer)

    @property
    def max_seq_length(self) -> int | None:
        """The input module's token limit, or None; setting it sets the input module's."""
        return getattr(self.input_module, "max_seq_length", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        module: Any = self.input_module  # any input module; a read-only max_seq_length raises AttributeError
        module.max_seq_length = value

    @property
    def modalities(self) -> list[Modality]:
        """The input modalities the model takes (text only, unless the input module says more)."""
        return list(getattr(self.input_module, "modalities", ["text"]))

    def supports(self, modality: str | tuple[str, ...]) -> bool:
        """Whether the model takes inputs of ``modality`` (e.g. "image", or ("image", "text") for a dict of both)."""
        return supports(self.modalities, modality)

    def classify_inputs(self, inputs: list[Any]) -> BatchKinds | None:
        """Decide the modality of each input once (see :func:`embedstack.inputs.classify_batch`).

        Raises UnsupportedModalityError naming the modality if the model cannot take it. An input module with
        ``checks_own_inputs = True`` (the Router, which also takes the legacy ``{task: text}`` dicts that are no
        modality) checks its inputs itself: for it, inputs of no known kind give None instead of an error.
        """
        owner = f"This model ({type(self.input_module).__name__} input)"
        if not getattr(self.input_module, "checks_own_inputs", False):
            return classify_batch(inputs, self.modalities, owner)
        try:
            return classify_batch(inputs, self.modalities, owner)
        except UnsupportedModalityError:
            return None

    def check_modality(self, inputs: list[Any]) -> str | tuple[str, ...] | None:
        """The modality of a batch of inputs; raises UnsupportedModalityError naming it if the model cannot take it."""
        kinds = self.classify_inputs(inputs)
        return kinds.modality if kinds is not None else None

    def get_model_kwargs(self) -> list[str]:
        """The extra ``encode`` keyword arguments the modules accept in ``forward``."""
        return sorted(set().union(*(self._forward_keywords(name, module) for name, module in self.named_children())))

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turn raw inputs into features with the input module (modality checked, prompt prepended)."""
        if not inputs:
            return {}
        self.check_modality(inputs)
        return self.preprocess_batch(inputs, prompt=prompt, **kwargs)

    def preprocess_batch(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """:meth:`preprocess` for inputs whose modality was already checked (what the engine calls per batch)."""
        module: Any = self.input_module  # an InputModule, or any nn.Module with preprocess() or tokenize()
        if isinstance(module, InputModule) or hasattr(module, "preprocess"):
            return module.preprocess(inputs, prompt=prompt, **kwargs)
        if not hasattr(module, "tokenize"):
            raise TypeError(
                f"The first module ({type(module).__name__}) has no preprocess() or tokenize(), so it cannot take raw "
                "inputs. Put an input module (Transformer, StaticEmbedding, Router, ...) first."
            )
        if prompt:
            inputs = InputModule._prepend_prompt(inputs, prompt)
        return module.tokenize(inputs)

    @property
    def token_batcher(self) -> TokenBatcher | None:
        """The input module when it tokenizes once for batching by token length (the Transformer), else None."""
        module = self.input_module
        if callable(getattr(module, "tokenize_unpadded", None)) and callable(getattr(module, "collate", None)):
            return module  # type: ignore[return-value]
        return None

    def tokenize(self, texts: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Deprecated: use :meth:`preprocess`."""
        warnings.warn("tokenize() is deprecated; use preprocess() instead.", FutureWarning, stacklevel=2)
        return self.preprocess(texts, **kwargs)

    def split_forward_kwargs(self, kwargs: dict[str, Any], *, strict: bool = True) -> dict[str, dict[str, Any]]:
        """Each module's ``forward`` keywords out of ``encode``-style ``kwargs``, by module name.

        With ``strict``, a keyword no module takes (other than the preprocessing ones, ``task`` and
        ``processing_kwargs``) raises ValueError listing the accepted ones.
        """
        accepted = {name: self._forward_keywords(name, module) for name, module in self.named_children()}
        if strict:
            unknown = set(kwargs) - set().union(*accepted.values()) - PREPROCESS_KEYWORDS
            if unknown:
                takes = sorted(set().union(*accepted.values()))
                kind = type(self).__name__  # the reference's wording, which its users' tests match
                raise ValueError(
                    f"{kind}.encode() has been called with additional keyword arguments that this model does not "
                    f"use: {sorted(unknown)}. As per {kind}.get_model_kwargs(), "
                    + (
                        f"the valid additional keyword arguments are: {takes}."
                        if takes
                        else "this model does not accept any additional keyword arguments."
                    )
                )
        return {name: {key: kwargs[key] for key in keys if key in kwargs} for name, keys in accepted.items()}

    def _forward_keywords(self, name: str, module: nn.Module) -> set[str]:
        return set(getattr(module, "forward_kwargs", set())) | set(self.module_kwargs.get(name, []))

    # nn.Sequential.forward takes one input; a model's forward also takes the encode keywords of its modules.
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Run every module over ``features``; keywords go to the modules that take them."""
        return self.forward_modules(features, self.split_forward_kwargs(kwargs, strict=False))

    def forward_modules(self, features: dict[str, Any], module_kwargs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Run the modules in order; ``module_kwargs`` holds each one's forward keywords, by module name."""
        for name, module in self.named_children():
            try:
                features = module(features, **module_kwargs.get(name, {}))
            except KeyError as exc:  # a module reading a feature that no earlier module wrote
                raise ModelFormatError(
                    f"Module {name} ({type(module).__name__}) needs the feature {exc.args[0]!r}, which the modules "
                    f"before it did not produce (the features are {sorted(map(str, features))}). Check the module "
                    "order in modules.json and the modules' input and output names."
                ) from exc
        return features
