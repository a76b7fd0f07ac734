"""Other ways to run a model's backbone, each thin over the core.

"native" runs plain BERT folders without transformers, "onnx" runs the backbone with onnxruntime (the
``embedstack[onnx]`` extra). ``backend="auto"`` measures, on this machine, torch and each of them that can run
the folder exactly (onnx only where the folder already holds its export and onnxruntime is installed), takes the
fastest and remembers the decision (select.py). registration.py registers them with ``Transformer.load``; the
model base calls it, so importing this package alone imports nothing heavy.
"""
