#!/usr/bin/env bash
# Set up both environments, then run the whole test suite (slow checks included): ruff, mypy and pytest in .venv,
# then the video tests (tests/modules/test_video*.py) in .venv-video, which has torchvision. Arguments go to the first
# pytest run; EMBEDSTACK_SKIP_VIDEO=1 leaves out the video environment and its tests. The tests use two compute
# threads (the 2-core CI machine runs nothing else); EMBEDSTACK_TEST_THREADS=1 suits a machine busy with other work.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export EMBEDSTACK_TEST_THREADS="${EMBEDSTACK_TEST_THREADS:-2}"
.venv/bin/python -m ruff check src tests benchmarks conftest.py
.venv/bin/python -m ruff format --check src tests benchmarks conftest.py
.venv/bin/python -m mypy
# The docs site (mkdocs.yml), strict: a broken link, an unknown reference or a docstring that does not parse fails
# the run. Built offline into a temporary folder; NO_MKDOCS_2_WARNING=1 silences the Material theme's banner.
docs_site="$(mktemp -d)"
trap 'rm -rf "$docs_site"' EXIT
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --quiet --site-dir "$docs_site"
.venv/bin/python -m pytest -q "$@"
if [ "${EMBEDSTACK_SKIP_VIDEO:-0}" != 1 ]; then
  scripts/setup.sh video
  .venv-video/bin/python -m pytest -q tests/modules/test_video*.py
fi
