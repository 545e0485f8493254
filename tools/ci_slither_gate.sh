#!/usr/bin/env bash
# CI gate (called from .ci/run): slither on contracts/ in strict mode — every finding in our own
# contracts must be fixed or explained in docs/SLITHER_TRIAGE.md. Needs network only the first
# time (pip install of tools/slither-requirements.txt into .venv-slither); then a few seconds.
# Bounded to 5 minutes so a hung compiler cannot stall CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI=true
timeout --foreground 300 tools/slither.sh --strict "$@" || {
  rc=$?
  [ "$rc" = 124 ] && echo "slither gate: timed out after 300 s" >&2
  exit "$rc"
}
