#!/usr/bin/env bash
# Installs whatever MedLedger needs and is missing. Idempotent; quick when all is there.
# Writes outside the project only: ~/.solcx/solc-v$SOLC_VERSION (+ a folder beside it) and
# two network ids (medledger-ganache, medledger-anvil) in ~/.brownie/network-config.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SOLC_VERSION=0.8.28
VENV=$ROOT/.venv
MNEMONIC="test test test test test test test test test test test junk"

die() { echo "medledger setup: $*" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || die "python3 not found: install Python 3.10 or newer"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "Python 3.10 or newer is required (found $(python3 --version 2>&1))"
python3 -c 'import venv, ensurepip' 2>/dev/null || die "Python's venv module is missing: install python3-venv"
command -v node >/dev/null 2>&1 || die "node not found: install Node.js 18 or newer"
command -v npm >/dev/null 2>&1 || die "npm not found: install npm (it ships with Node.js 18 or newer)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)' \
  || die "Node.js 18 or newer is required (found $(node --version))"

# --- PostgreSQL server binaries (Debian's `postgresql`): the index tests start a throwaway server
# from a temp dir (medledger/testing/postgres.py). Installed only when missing, and only where apt is.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "medledger setup: installing PostgreSQL (apt-get install postgresql)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql \
      >/dev/null) || die "apt-get install postgresql failed (see above)"
  else
    echo "medledger setup: PostgreSQL is not installed (the index's PostgreSQL tests need it): apt-get install postgresql" >&2
  fi
fi

# --- npm side: ganache, solc-js, OpenZeppelin, anvil (pinned by package-lock.json)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "medledger setup: installing npm packages (package-lock.json)"
  # `npm install` (not `npm ci`): the lock pins every package, but npm refuses `ci` because the
  # anvil wrapper's other-platform optional binaries cannot be resolved from this registry.
  npm install --no-audit --no-fund --no-save --no-update-notifier --loglevel=error >/dev/null || die "npm install failed (see above)"
  for tool in ganache anvil solcjs; do
    [ -x "node_modules/.bin/$tool" ] || die "npm install did not provide $tool"
  done
  touch node_modules/.package-lock.json
fi

# --- Python side: a project virtualenv with eth-brownie (pure Python: its mypyc wheel
# crashes on `networks:` settings in brownie-config.yaml) and the medledger package.
stamp="$VENV/.medledger-installed"
want=$(cat pyproject.toml constraints.txt | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
if [ ! -x "$VENV/bin/python" ]; then
  echo "medledger setup: creating .venv"
  python3 -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "medledger setup: installing Python packages (constraints.txt)"
  BROWNIE_NOCOMPILE=1 "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    --no-binary eth-brownie -c constraints.txt -e ".[dev]" \
    2> >(grep -v "is ignored: it is neither" >&2) || die "pip install failed (see above)"
  echo "$want" > "$stamp"
fi
# schemathesis (the gateway's OpenAPI fuzz test) needs hypothesis>=6.130 while brownie pins 6.27.3, so it
# gets its own venv, pinned by constraints-fuzz.txt.
FUZZ=$ROOT/.venv-fuzz
fuzz_stamp="$FUZZ/.medledger-installed"
fuzz_want=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open("constraints-fuzz.txt","rb").read()).hexdigest())')
if [ "$(cat "$fuzz_stamp" 2>/dev/null)" != "$fuzz_want" ]; then
  echo "medledger setup: installing schemathesis in .venv-fuzz (constraints-fuzz.txt)"
  [ -x "$FUZZ/bin/python" ] || python3 -m venv "$FUZZ"
  "$FUZZ/bin/pip" install --quiet --disable-pip-version-check -c constraints-fuzz.txt schemathesis \
    2> >(grep -v "is ignored: it is neither" >&2) || die "pip install of schemathesis failed (see above)"
  echo "$fuzz_want" > "$fuzz_stamp"
fi
# Chains launched by brownie are found on the venv's PATH.
for tool in ganache anvil; do
  ln -sf "$ROOT/node_modules/.bin/$tool" "$VENV/bin/$tool"
done

# --- solc: register a compiler where py-solc-x looks (~/.solcx/solc-vX.Y.Z). A native solc of
# the pinned version on PATH wins; otherwise a self-contained copy of the solc-js bridge.
SOLCX_DIR=${SOLCX_BINARY_PATH:-$HOME/.solcx}
target="$SOLCX_DIR/solc-v$SOLC_VERSION"
if ! "$target" --version 2>/dev/null | grep -q "Version: $SOLC_VERSION"; then
  mkdir -p "$SOLCX_DIR"
  native=$(command -v solc || true)
  if [ -n "$native" ] && "$native" --version 2>/dev/null | grep -q "Version: $SOLC_VERSION" \
     && ! head -c 200 "$native" | grep -q "solc-bridge"; then
    echo "medledger setup: registering native $native for py-solc-x"
    ln -sf "$native" "$target"
  else
    echo "medledger setup: registering the solc-js bridge as $target"
    home="$SOLCX_DIR/medledger-solcjs-$SOLC_VERSION"
    rm -rf "$home" && mkdir -p "$home/node_modules"
    cp tools/solc-bridge.js "$home/solc-bridge.js"
    # solc and its runtime dependencies, copied from this project's node_modules
    node -e '
      const path = require("path"), fs = require("fs");
      const seen = new Set();
      (function walk(name, from) {
        const dir = path.dirname(require.resolve(name + "/package.json", { paths: [from] }));
        if (seen.has(dir)) return; seen.add(dir);
        const deps = Object.keys(JSON.parse(fs.readFileSync(dir + "/package.json")).dependencies || {});
        deps.forEach((d) => walk(d, dir));
      })("solc", process.cwd());
      console.log([...seen].join("\n"));' | while read -r dir; do
        rel=${dir#"$ROOT/node_modules/"}
        mkdir -p "$home/node_modules/$(dirname "$rel")"
        cp -r "$dir" "$home/node_modules/$rel"
      done
    printf '#!/bin/sh\n# solc-js %s behind a native-solc command line (MedLedger tools/solc-bridge.js)\nexec "%s" "%s/solc-bridge.js" "$@"\n' \
      "$SOLC_VERSION" "$(command -v node)" "$home" > "$target"
    chmod +x "$target"
    "$target" --version | grep -q "Version: $SOLC_VERSION" || die "the solc bridge at $target does not answer --version"
  fi
fi

# --- brownie networks: two project-specific ids; the user's own networks are left alone.
netcfg="$HOME/.brownie/network-config.yaml"
if ! grep -q "id: medledger-ganache" "$netcfg" 2>/dev/null; then
  (cd /tmp && "$VENV/bin/brownie" networks add Development medledger-ganache cmd=ganache \
     host=http://127.0.0.1 port=8545 evm_version=shanghai accounts=20 gas_limit=30000000 \
     default_balance=1000000 chain_id=1337 mnemonic="$MNEMONIC" >/dev/null) \
    || die "could not add the medledger-ganache brownie network"
fi
if ! grep -q "id: medledger-anvil" "$netcfg" 2>/dev/null; then
  # steps_tracing + a zero base fee: brownie's coverage needs Anvil's step traces, and it traces
  # view calls as gas-price-0 transactions.
  (cd /tmp && "$VENV/bin/brownie" networks add Development medledger-anvil cmd=anvil \
     host=http://127.0.0.1 port=8546 evm_version=shanghai accounts=20 gas_limit=30000000 \
     default_balance=1000000 chain_id=31337 mnemonic="$MNEMONIC" steps_tracing=true base_fee=0 >/dev/null) \
    || die "could not add the medledger-anvil brownie network"
elif ! "$VENV/bin/python" - "$netcfg" <<'PY'
import sys, yaml
nets = yaml.safe_load(open(sys.argv[1])).get("development") or []
cfg = next((n.get("cmd_settings") or {} for n in nets if n.get("id") == "medledger-anvil"), {})
sys.exit(0 if cfg.get("steps_tracing") is True and cfg.get("base_fee") == 0 else 1)
PY
then
  (cd /tmp && "$VENV/bin/brownie" networks modify medledger-anvil steps_tracing=true base_fee=0 >/dev/null) \
    || die "could not update the medledger-anvil brownie network"
fi
# A local node registered as a *live* network: tests exercise the live-network deploy path on it.
if ! grep -q "id: medledger-local-live" "$netcfg" 2>/dev/null; then
  (cd /tmp && "$VENV/bin/brownie" networks add Ethereum medledger-local-live host=http://127.0.0.1:8555 \
     chainid=1338 >/dev/null) || die "could not add the medledger-local-live brownie network"
fi
