"""The ``embedstack`` command: main.py parses and dispatches; one module per command, plus the output writers.

Only the command being run is imported, so ``embedstack --help`` loads neither torch nor a model.
"""

from embedstack.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
