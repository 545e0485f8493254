#!/usr/bin/env bash
# Static analysis: slither on contracts/ through the project's registered solc, gated by
# docs/SLITHER_TRIAGE.md (tools/slither_gate.py). Idempotent; quick when .venv-slither is there.
#
#   tools/slither.sh            fail on any unexplained High/Medium finding in our own contracts
#   tools/slither.sh --strict   fail on any unexplained finding (every Low/Informational too)
#   CI=true tools/slither.sh    same as --strict (set SLITHER_STRICT=0 to relax)
#   --target DIR                analyse another folder of .sol files (default: contracts)
#
# Writes reports/slither.json (raw), reports/slither-summary.md, reports/slither.log (slither's
# own output). Exit 0 pass, 1 gate failed, 2 slither could not run (e.g. a compile error).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv-slither
REQS=tools/slither-requirements.txt
die() { echo "slither: $*" >&2; exit 2; }

strict=${SLITHER_STRICT:-}
[ -z "$strict" ] && { [ "${CI:-}" = true ] && strict=1 || strict=0; }
target=contracts
while [ $# -gt 0 ]; do
  case "$1" in
    --strict) strict=1 ;;
    --target) target=${2:?--target needs a folder}; shift ;;
    --target=*) target=${1#--target=} ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

# --- the compiler and OpenZeppelin come from the main setup (solc-js bridge in ~/.solcx).
solc_version=$(sed -n 's/^ *version: *\([0-9][0-9.]*\).*/\1/p' brownie-config.yaml | head -n 1)
[ -n "$solc_version" ] || die "no compiler.solc.version in brownie-config.yaml"
solc="${SOLCX_BINARY_PATH:-$HOME/.solcx}/solc-v$solc_version"
if ! "$solc" --version 2>/dev/null | grep -q "Version: $solc_version" || [ ! -d node_modules/@openzeppelin/contracts ]; then
  tools/setup.sh
fi
"$solc" --version 2>/dev/null | grep -q "Version: $solc_version" || die "$solc does not answer --version"

# --- slither's own virtualenv, pinned to the exact set in tools/slither-requirements.txt.
want=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$REQS")
stamp=$VENV/.medledger-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "slither: installing slither into .venv-slither ($REQS)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQS" \
    2> >(grep -v "is ignored: it is neither" >&2) || die "pip install failed (see above)"
  "$VENV/bin/pip" check >/dev/null || die "inconsistent .venv-slither: $("$VENV/bin/pip" check)"
  echo "$want" > "$stamp"
fi
# solc-select (imported by crytic-compile) keeps its folder in $VIRTUAL_ENV, not in $HOME.
export VIRTUAL_ENV=$VENV

# --- run slither (it refuses to overwrite its JSON), then gate.
remaps=$(grep -o '"@[^"]*=[^"]*"' brownie-config.yaml | tr -d '"' | tr '\n' ' ')
mkdir -p reports
rm -f reports/slither.json
# No --filter-paths: slither 0.11 drops a result when ANY of its elements is in a filtered path,
# which would hide findings in our code that mention an OpenZeppelin element. tools/slither_gate.py
# ignores results that touch only node_modules/ or contracts/test/ instead.
# --show-ignored-findings: inline `slither-disable` comments do not hide anything; every
# accepted finding is explained in docs/SLITHER_TRIAGE.md instead.
if ! "$VENV/bin/slither" "$target" \
    --solc "$solc" --solc-standard-json --solc-remaps "${remaps% }" \
    --show-ignored-findings \
    --fail-none --disable-color --json reports/slither.json > reports/slither.log 2>&1 \
   || [ ! -s reports/slither.json ]; then
  tail -n 40 reports/slither.log >&2
  die "slither did not run (full output in reports/slither.log)"
fi
gate_args=()
[ "$strict" = 1 ] && gate_args+=(--strict)
exec "$VENV/bin/python" tools/slither_gate.py --json reports/slither.json --targets "${target%/}/*.sol" \
  --triage docs/SLITHER_TRIAGE.md --summary reports/slither-summary.md "${gate_args[@]}"
