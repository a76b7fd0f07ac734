"""``embedstack export onnx MODEL OUT``: save a model with an ONNX export of its backbone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedstack.backends.onnx_optimize import OPTIMIZED_FILES
from embedstack.backends.onnx_quantize import QUANTIZED_FILES
from embedstack.cli.inputs import iter_texts
from embedstack.defaults import resolve_cli_model
from embedstack.model import SentenceTransformer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``embedstack export``."""
    parser.add_argument("format", choices=["onnx"], help="onnx: onnx/model.onnx beside the saved modules")
    parser.add_argument("model", help="model folder or Hub id")
    parser.add_argument("output", type=Path, help="the folder to write")
    parser.add_argument("--quantize", choices=list(QUANTIZED_FILES), help="also write an int8 file (int8: ours)")
    parser.add_argument("--optimize", choices=list(OPTIMIZED_FILES), help="also write onnx/model_O<n>.onnx")
    parser.add_argument(
        "--calibration", type=Path,
        help="texts to calibrate --quantize on: a .txt file (one per line) or .jsonl ('text' field); default: built-in",
    )  # fmt: skip
    parser.add_argument(
        "--min-cosine", type=float,
        help="with --quantize: the lowest cosine to fp32 the self-check accepts on this machine (default 0.99)",
    )  # fmt: skip
    parser.add_argument("--trust-remote-code", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Load the model on torch (CPU) and write the export."""
    model = SentenceTransformer(
        resolve_cli_model(args.model), device="cpu", trust_remote_code=args.trust_remote_code, backend="torch"
    )
    texts = None if args.calibration is None else list(iter_texts(args.calibration, "text"))
    folder = model.export_onnx(
        args.output, quantize=args.quantize, optimize=args.optimize, calibration_texts=texts, min_cosine=args.min_cosine
    )
    written = sorted(path.name for path in (folder / "onnx").iterdir())
    print(f"Wrote {folder} with onnx/{', onnx/'.join(written)}", file=sys.stderr)
    return 0
