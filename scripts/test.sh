#!/usr/bin/env bash
# Set up both environments, then run the whole test suite (slow checks included): ruff, mypy and pytest in .venv,
# then the video tests (tests/test_video*.py) in .venv-video, which has torchvision. Arguments go to the first
# pytest run; EMBEDSTACK_SKIP_VIDEO=1 leaves out the video environment and its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m ruff check src tests benchmarks conftest.py
.venv/bin/python -m ruff format --check src tests benchmarks conftest.py
.venv/bin/python -m mypy
.venv/bin/python -m pytest -q "$@"
if [ "${EMBEDSTACK_SKIP_VIDEO:-0}" != 1 ]; then
  scripts/setup.sh video
  .venv-video/bin/python -m pytest -q tests/test_video*.py
fi
