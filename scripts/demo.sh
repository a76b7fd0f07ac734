#!/usr/bin/env bash
# Set up (first run only takes a while), then encode sample sentences with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
HF_HUB_OFFLINE=1 .venv/bin/embedstack encode "$@"
