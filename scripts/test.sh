#!/usr/bin/env bash
# Set up both environments, then run the whole test suite (slow checks included): ruff, mypy and pytest in .venv (the
# main suite, then the checks marked slow), then the video tests (tests/modules/test_video*.py) in .venv-video, which
# has torchvision. Arguments go to both .venv pytest runs; EMBEDSTACK_SKIP_VIDEO=1 leaves out the video environment
# and its tests. pytest runs two worker processes (pytest-xdist, one per core of the 2-core CI machine), each test file
# on one worker (conftest.py groups them); EMBEDSTACK_TEST_WORKERS=1 runs the tests in this process instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m ruff check src tests benchmarks conftest.py
.venv/bin/python -m ruff format --check src tests benchmarks conftest.py
.venv/bin/python -m mypy
# The docs site (mkdocs.yml), strict: a broken link, an unknown reference or a docstring that does not parse fails
# the run. Built offline into a temporary folder; NO_MKDOCS_2_WARNING=1 silences the Material theme's banner.
docs_site="$(mktemp -d)"
trap 'rm -rf "$docs_site"' EXIT
NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict --quiet --site-dir "$docs_site"
# The main suite first (every check not marked slow: under 10 minutes), then the slow checks (real-model parity,
# multi-process, load, Ray clusters, the README run); both always run. pytest's exit status 5 ("no tests
# collected", e.g. arguments that select no slow test) is not a failure here.
workers="${EMBEDSTACK_TEST_WORKERS:-2}"
run_pytest() {
  local status=0
  if [ "$workers" -gt 1 ]; then
    .venv/bin/python -m pytest -q -n "$workers" --dist loadgroup "$@" || status=$?
  else
    .venv/bin/python -m pytest -q "$@" || status=$?
  fi
  if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
    exit "$status"
  fi
}
run_pytest -m "not slow" "$@"
run_pytest -m slow "$@"
if [ "${EMBEDSTACK_SKIP_VIDEO:-0}" != 1 ]; then
  scripts/setup.sh video
  .venv-video/bin/python -m pytest -q tests/modules/test_video*.py
fi
