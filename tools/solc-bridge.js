#!/usr/bin/env node
// A native-`solc`-compatible front end for solc-js, for py-solc-x, brownie and slither.
// It answers `--version` in native solc's format and `--standard-json` (input on stdin,
// output on stdout, nothing else on stdout). Imports are resolved against --base-path,
// every --include-path and --allow-paths entry, the working directory and its node_modules.
'use strict';
const fs = require('fs');
const path = require('path');

function loadSolc() {
  const candidates = [
    process.env.MEDLEDGER_SOLCJS_DIR,
    path.join(__dirname, 'node_modules', 'solc'),
    path.join(__dirname, '..', 'node_modules', 'solc'),
    path.join(process.cwd(), 'node_modules', 'solc'),
  ].filter(Boolean);
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'soljson.js'))) return require(dir);
  }
  process.stderr.write('solc-bridge: solc-js not found; run `npm ci` in the MedLedger project\n');
  process.exit(2);
}

function nativeVersionString(solc) {
  // solc-js reports e.g. "0.8.28+commit.7893614a.Emscripten.clang"; native solc prints
  // "Version: 0.8.28+commit.7893614a.Linux.g++", which is what py-solc-x and crytic-compile parse.
  const full = solc.version();
  const m = full.match(/^(\d+\.\d+\.\d+)(\+commit\.[0-9a-f]+)?/);
  return `${m[1]}${m[2] || ''}.Linux.g++`;
}

function parseArgs(argv) {
  const opts = { roots: [], standardJson: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (a.includes('=') ? a.split('=').slice(1).join('=') : argv[++i]);
    if (a === '--version' || a === '-v') opts.version = true;
    else if (a === '--standard-json') opts.standardJson = true;
    else if (a.startsWith('--base-path') || a.startsWith('--include-path')) opts.roots.push(value());
    else if (a.startsWith('--allow-paths')) opts.roots.push(...value().split(','));
    // Other flags (--optimize, --pretty-json, ...) do not change standard-json output.
  }
  return opts;
}

function makeResolver(roots) {
  const bases = [...roots, process.cwd(), path.join(process.cwd(), 'node_modules')]
    .filter(Boolean).map((r) => path.resolve(r));
  return function findImports(importPath) {
    const tries = path.isAbsolute(importPath) ? [importPath] : bases.map((b) => path.join(b, importPath));
    for (const p of tries) {
      try {
        return { contents: fs.readFileSync(p, 'utf8') };
      } catch (_) { /* try the next root */ }
    }
    return { error: `File not found: ${importPath} (searched ${bases.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    const solc = loadSolc();
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${nativeVersionString(solc)}\n`);
    return;
  }
  if (!opts.standardJson) {
    process.stderr.write('solc-bridge: only --version and --standard-json are supported\n');
    process.exit(2);
  }
  const input = fs.readFileSync(0, 'utf8');
  const solc = loadSolc();
  const output = solc.compile(input, { import: makeResolver(opts.roots) });
  process.stdout.write(output);
}

main();
