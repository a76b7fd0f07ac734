"""The options every model-loading command shares (--model, --backend, --int8, ...), and the model they load."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from embedstack.backends.int8_mode import INT8_OPTION
from embedstack.base import BaseModel
from embedstack.defaults import resolve_cli_model
from embedstack.kinds import model_kind
from embedstack.model import SentenceTransformer
from embedstack.modules.transformer.backend_registry import backend_names
from embedstack.sparse_encoder import SparseEncoder

# What each kind's commands are, for the error that names the right one.
_COMMANDS_FOR = {
    "SentenceTransformer": "Use 'embedstack encode' for it.",
    "CrossEncoder": "Use 'embedstack rerank' for it.",
    "SparseEncoder": "Use 'embedstack encode' for it.",
}
# The kinds that encode texts into vectors: what 'embedstack encode' runs; each takes an embedding cache (--cache).
ENCODE_KINDS = (SentenceTransformer, SparseEncoder)
Kinds = type[BaseModel] | tuple[type[BaseModel], ...]


def add_model_arguments(parser: argparse.ArgumentParser, *, repeatable: bool = False) -> None:
    """--model, --device, --trust-remote-code and the backend options (``repeatable``: --model may repeat)."""
    if repeatable:
        parser.add_argument(
            "--model", "-m", action="append",
            help="model folder or Hub id (default: the embedded all-MiniLM-L6-v2); repeat it to serve several",
        )  # fmt: skip
    else:
        parser.add_argument("--model", "-m", help="model folder or Hub id (default: the embedded all-MiniLM-L6-v2)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow code from the model folder to run")
    add_backend_arguments(parser)
    parser.add_argument(
        "--int8",
        action="store_true",
        help="quantize the backbone to int8 on CPU at load: faster, nearly the same vectors (self-checked)",
    )
    parser.add_argument(
        "--int8-min-cosine",
        type=float,
        help="with --int8 or an int8 --onnx-file: the lowest cosine to fp32 the self-check accepts (default 0.99)",
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend and --onnx-file."""
    parser.add_argument(
        "--backend",
        choices=backend_names(),
        default="auto",
        help="auto (default): of the backends that run the folder exactly (transformers on torch; native for plain "
        "BERT folders; onnx where the folder holds its export), the one measured fastest on this machine (measured "
        "once per model and machine, remembered in ~/.cache/embedstack)",
    )
    parser.add_argument(
        "--onnx-file",
        help="run this ONNX file of the model folder, e.g. model_qint8_avx512_vnni.onnx (written by 'embedstack export "
        "onnx --quantize int8'); implies --backend onnx",
    )


def model_class(args: argparse.Namespace, kind: Kinds | None = SentenceTransformer) -> tuple[type[BaseModel], Path]:
    """The class of the model the command's options name, and its local folder; nothing is loaded.

    ``kind`` is the model class (or classes) the command runs (None: whichever kind the folder holds).

    Raises:
        ValueError: The folder holds another kind of model than the command runs.
    """
    cls, folder = model_kind(resolve_cli_model(args.model), backend_options(args).get("backend", "torch"))
    kinds = kind if isinstance(kind, tuple) else (kind,) if kind is not None else (cls,)
    if cls not in kinds:
        runs = " or a ".join(k.__name__ for k in kinds)
        raise ValueError(
            f"{args.model or folder} is a {cls.__name__}, and this command runs a {runs}. "
            f"{_COMMANDS_FOR.get(cls.__name__, 'embedstack info describes it.')}"
        )
    return cls, folder


def load_model(args: argparse.Namespace, device: str | None = None, *, kind: Kinds | None = SentenceTransformer) -> Any:
    """The model the command's options name, on ``device`` (default: --device, else the best available).

    ``kind`` is the model class (or classes) the command runs (None: whichever kind the folder holds, for ``info``).

    Raises:
        ValueError: The folder holds another kind of model than the command runs.
    """
    options = backend_options(args)
    cls, folder = model_class(args, kind)
    extra: dict[str, Any] = {"cache": getattr(args, "cache", None)} if cls in ENCODE_KINDS else {}
    model = cls(
        str(folder),
        device=device or getattr(args, "device", None),
        trust_remote_code=args.trust_remote_code,
        **extra,
        **options,
    )
    if getattr(args, "int8", False):
        model.quantize("int8", min_cosine=getattr(args, "int8_min_cosine", None))
    return model


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    """``backend`` (and ``model_kwargs``) for --backend, --onnx-file and --int8."""
    int8, onnx_file = getattr(args, "int8", False), getattr(args, "onnx_file", None)
    if int8 and onnx_file:
        raise ValueError("--int8 quantizes the model at load and --onnx-file runs an exported file: choose one.")
    if int8:
        return {"backend": "torch"}  # quantize() exports and quantizes the torch backbone
    if onnx_file:
        if args.backend not in ("auto", "onnx"):
            raise ValueError(f"--onnx-file runs the onnx backend; it cannot be combined with --backend {args.backend}.")
        model_kwargs: dict[str, Any] = {"file_name": onnx_file}
        if getattr(args, "int8_min_cosine", None) is not None:
            model_kwargs[INT8_OPTION] = args.int8_min_cosine
        return {"backend": "onnx", "model_kwargs": model_kwargs}
    return {"backend": args.backend}
