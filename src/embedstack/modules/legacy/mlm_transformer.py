"""``MLMTransformer``: the masked-language-model backbone type name sentence-transformers 5.0-5.3 wrote for SPLADE.

Those folders name ``sentence_transformers.sparse_encoder.models.MLMTransformer`` (or a later spelling) and their
``sentence_bert_config.json`` has no task, so they load as a :class:`~embedstack.modules.Transformer` whose
``transformer_task`` defaults to "fill-mask" (the MLM's logits per token).
"""

from __future__ import annotations

import inspect
import os
import re
import warnings
from typing import Any

from embedstack.modules.base import InputModule
from embedstack.modules.transformer.module import Transformer, TransformerTask
from embedstack.registry import ST, register_module

DEPRECATED = 'MLMTransformer is deprecated: use Transformer(model_name_or_path, transformer_task="fill-mask").'


@register_module(
    f"{ST}.sparse_encoder.modules.mlm_transformer.MLMTransformer",
    aliases=(
        f"{ST}.sparse_encoder.models.MLMTransformer",
        f"{ST}.sparse_encoder.models.MLMTransformer.MLMTransformer",
        f"{ST}.sparse_encoder.modules.MLMTransformer",
    ),
)
class MLMTransformer(Transformer):
    """Deprecated: a :class:`~embedstack.modules.Transformer` whose ``transformer_task`` defaults to "fill-mask".

    Folders that name this type load as one without a warning (their ``sentence_bert_config.json`` may still name
    another task) and re-save under the same name, as sentence-transformers 6.2 does; sentence-transformers 6.2 and
    embedstack load that save. Building one in code warns: write ``Transformer(name, transformer_task="fill-mask")``.

    Example:
        >>> module = MLMTransformer.load(str(mlm_path))
        >>> module.transformer_task
        'fill-mask'
    """

    def __init__(self, *args: Any, transformer_task: TransformerTask = "fill-mask", **kwargs: Any) -> None:
        warnings.warn(DEPRECATED, FutureWarning, stacklevel=2)
        super().__init__(*args, transformer_task=transformer_task, **kwargs)

    @classmethod
    def load(
        cls,
        model_name_or_path: str | os.PathLike[str],
        subfolder: str = "",
        *,
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> InputModule:
        """Load the folder with "fill-mask" as the default task (a 5.x ``sentence_bert_config.json`` names none)."""
        defaults = {"transformer_task": "fill-mask", **(init_defaults or {})}
        return super().load(model_name_or_path, subfolder, init_defaults=defaults, **kwargs)

    @classmethod
    def _load_torch(cls, *args: Any, **kwargs: Any) -> Transformer:
        with warnings.catch_warnings():  # loading a saved folder is not the deprecated use
            warnings.filterwarnings("ignore", message=re.escape(DEPRECATED), category=FutureWarning)
            return super()._load_torch(*args, **kwargs)


def _signature() -> inspect.Signature:
    """Transformer's own signature with "fill-mask" as the task's default.

    ``_load_torch`` keeps the folder's config keys that the signature names, and ``*args, **kwargs`` name none.
    """
    signature = inspect.signature(Transformer.__init__)
    parameters = [
        p.replace(default="fill-mask") if p.name == "transformer_task" else p for p in signature.parameters.values()
    ]
    return signature.replace(parameters=parameters)


MLMTransformer.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
