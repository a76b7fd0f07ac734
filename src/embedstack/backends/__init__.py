"""Other ways to run a model's backbone, each thin over the core.

Importing this package registers them with ``Transformer.load`` (see modules/transformer/backends.py): "native"
runs plain BERT folders without transformers.
"""

from embedstack.backends.native import native_input_module
from embedstack.modules.transformer.backends import register_backend

register_backend("native", native_input_module, runs="plain BERT folders (with tokenizer.json and model.safetensors)")
