"""Parsing and dispatch: each command is a module with ``add_arguments(parser)`` and ``run(args) -> int``.

Only the module of the command on the command line is imported (to add its options and run it); the others are
listed by name and help line alone. ``embedstack --help`` thus imports nothing heavy (no torch, no model).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from embedstack._version import __version__
from embedstack.errors import EmbedstackError

# name -> (module, one-line help), in the order --help lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "encode": ("embedstack.cli.encode", "encode texts into vectors"),
    "rerank": ("embedstack.cli.rerank", "rank documents against a query with a cross-encoder"),
    "cache": ("embedstack.cli.cache", "describe or empty an embedding cache file"),
    "info": ("embedstack.cli.info", "describe a model: modules, dimensions, prompts, similarity"),
    "export": ("embedstack.cli.export", "save a model with its backbone exported (ONNX)"),
    "eval": ("embedstack.cli.evaluate", "evaluate a model on a benchmark"),
    "serve": ("embedstack.cli.serve", "serve the model over HTTP (OpenAI /v1/embeddings, TEI /embed)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of the ``embedstack`` command.

    Args:
        command: Add only this command's options (importing its module); None adds every command's.
    """
    parser = argparse.ArgumentParser(prog="embedstack", description="Sentence embeddings from the command line.")
    parser.add_argument("--version", action="version", version=f"embedstack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (module, summary) in COMMANDS.items():
        subparser = commands.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        if command is None or command == name:
            importlib.import_module(module).add_arguments(subparser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (2 with a one-line message for errors embedstack expects)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_in(argv)).parse_args(argv)
    # The command shows its own progress bars; silence the Hub's and transformers' "Loading weights" bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args))
    except (EmbedstackError, OSError, ValueError) as exc:
        print(f"embedstack {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _command_in(argv: list[str]) -> str:
    """The command named on the command line ("" when none is: argparse then says what is missing)."""
    first = next((word for word in argv if not word.startswith("-")), "")
    return first if first in COMMANDS else ""
