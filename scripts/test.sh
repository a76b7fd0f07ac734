#!/usr/bin/env bash
# Set up the dev environment, then run the whole test suite (slow checks included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m ruff check src tests benchmarks conftest.py
.venv/bin/python -m ruff format --check src tests benchmarks conftest.py
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -q "$@"
