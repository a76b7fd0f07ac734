"""The command starts light: --help and argument errors import neither torch nor a command's module."""

import subprocess
import sys

import pytest

from embedstack.cli.main import COMMANDS, build_parser

PROBE = """
import sys
from embedstack.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = [name for name in ("torch", "transformers", "numpy", "embedstack.model") if name in sys.modules]
commands = sorted(name for name in sys.modules if name.startswith("embedstack.cli.") and name != "embedstack.cli.main")
print(heavy, commands)
"""


def imported_after(argv: list[str]) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--help"], ["--version"], [], ["encod"]])
def test_help_and_usage_errors_import_nothing_heavy(argv):
    assert imported_after(argv) == "[] []"


def test_a_commands_help_imports_that_command_only():
    _, _, commands = imported_after(["cache", "--help"]).partition("] ")
    assert "'embedstack.cli.cache'" in commands
    assert "embedstack.cli.encode" not in commands and "embedstack.cli.serve" not in commands


def test_every_command_is_listed_and_has_its_options():
    parser = build_parser()
    help_text = parser.format_help()
    for name in COMMANDS:
        assert name in help_text
    args = parser.parse_args(["encode", "a text", "--long-inputs", "late", "--backend", "native"])
    assert (args.command, args.texts, args.long_inputs, args.backend) == ("encode", ["a text"], "late", "native")
