"""Other ways to run a model's backbone, each thin over the core.

Importing this package registers them with ``Transformer.load`` (see modules/transformer/backends.py): "native"
runs plain BERT folders without transformers, "onnx" runs the backbone with onnxruntime (the
``embedstack[onnx]`` extra). ``backend="auto"`` measures, on this machine, torch and each of them that can run
the folder exactly (onnx only where the folder already holds its export and onnxruntime is installed), takes the
fastest and remembers the decision (select.py).
"""

from typing import Any

from embedstack.backends.native import native_input_module
from embedstack.backends.onnx import auto_onnx_input_module, onnx_input_module
from embedstack.backends.select import choose_backend
from embedstack.modules.transformer.backends import register_auto_chooser, register_backend


def _native(folder: Any, hf_kwargs: dict[str, Any]) -> Any:
    # Hugging Face kwargs (dtype, attention implementation, ...) only mean something to transformers.
    return None if any(hf_kwargs.values()) else native_input_module(folder)


register_backend(
    "onnx",
    onnx_input_module,
    runs="Transformer folders whose backbone exports to ONNX",
    auto=auto_onnx_input_module,
)
register_backend(
    "native",
    _native,
    runs="plain BERT folders (with tokenizer.json and model.safetensors) with no model/processor/config kwargs",
    auto=True,
)
register_auto_chooser(choose_backend)
