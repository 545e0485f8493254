#!/usr/bin/env python3
"""Gate slither findings against docs/SLITHER_TRIAGE.md.

Reads slither's ``--json`` output, keys every finding in the project's own code by
(detector, contract, function) and looks it up in the triage file. Prints a summary by
impact and by contract, writes a Markdown summary, and exits:

* 0 - no unexplained High/Medium finding (and, with ``--strict``, no unexplained finding at all);
* 1 - the gate failed (an unexplained finding, or a triage entry without a reason);
* 2 - slither did not produce a usable report (compile error, missing file).

Only the standard library is used, so any Python 3.10+ can run it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IMPACTS = ("High", "Medium", "Low", "Informational", "Optimization")
BLOCKING = frozenset({"High", "Medium"})
# Paths that are not the project's own code (dependencies and test-only mocks).
NOT_OWN = re.compile(r"(^|/)node_modules/|(^|/)contracts/test/")
TRIAGE_HEADER = ("detector", "contract", "function", "impact", "why it is acceptable")
NONE = "-"
WILDCARD = "*"


@dataclass(frozen=True)
class Finding:
    """One slither result, located in the project's own code."""

    detector: str
    impact: str
    confidence: str
    contract: str
    function: str
    where: str
    text: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.detector, self.contract, self.function)

    @property
    def label(self) -> str:
        """How the triage table names it: Contract.function, or Contract / - for file-level items."""
        return self.contract if self.function == NONE else f"{self.contract}.{self.function}"


@dataclass(frozen=True)
class TriageEntry:
    """One row of the triage table."""

    detector: str
    contract: str
    function: str
    impact: str
    reason: str
    line: int

    def matches(self, finding: Finding) -> bool:
        return (
            self.detector == finding.detector
            and self.contract in (WILDCARD, finding.contract)
            and self.function in (WILDCARD, finding.function)
        )


class TriageError(Exception):
    """The triage file is malformed."""


def _is_own(element: dict[str, Any]) -> bool:
    mapping = element.get("source_mapping") or {}
    path = mapping.get("filename_relative") or mapping.get("filename_short") or ""
    return bool(path) and not mapping.get("is_dependency", False) and not NOT_OWN.search(path)


def _ancestors(element: dict[str, Any]) -> list[dict[str, Any]]:
    chain = [element]
    node = element
    while True:
        parent = (node.get("type_specific_fields") or {}).get("parent")
        if not isinstance(parent, dict):
            return chain
        chain.append(parent)
        node = parent


def _locate(element: dict[str, Any]) -> tuple[str, str]:
    """(contract, function) of an element; function is the member name for contract-level items."""
    chain = _ancestors(element)
    contract = next((e["name"] for e in chain if e.get("type") == "contract"), NONE)
    function = next((e["name"] for e in chain if e.get("type") == "function"), None)
    if function is None:
        # A state variable, event, error, struct...: the member itself; the contract or a pragma: "-".
        own_type = element.get("type")
        function = element.get("name", NONE) if own_type not in ("contract", "pragma") else NONE
        if own_type == "contract":
            contract = element.get("name", NONE)
    return contract, str(function)


def load_findings(report: dict[str, Any]) -> tuple[list[Finding], int]:
    """Own-code findings and the number of results that only touch dependencies."""
    findings: list[Finding] = []
    foreign = 0
    for result in (report.get("results") or {}).get("detectors", []):
        own = [e for e in result.get("elements", []) if _is_own(e)]
        if not own:
            foreign += 1
            continue
        contract, function = _locate(own[0])
        mapping = own[0].get("source_mapping") or {}
        lines = mapping.get("lines") or []
        where = mapping.get("filename_relative", "?") + (f"#L{lines[0]}" if lines else "")
        text = " ".join(result.get("description", "").split())
        findings.append(
            Finding(
                detector=result["check"],
                impact=result["impact"],
                confidence=result.get("confidence", "?"),
                contract=contract,
                function=function,
                where=where,
                text=text,
            )
        )
    return findings, foreign


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]


def load_triage(path: Path) -> list[TriageEntry]:
    """Rows of every table whose header is Detector | Contract | Function | Impact | Why it is acceptable."""
    if not path.exists():
        return []
    entries: list[TriageEntry] = []
    in_table = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if tuple(c.lower() for c in cells) == TRIAGE_HEADER:
            in_table = True
            continue
        if not in_table or set("".join(cells)) <= set("-: "):
            continue
        if len(cells) != len(TRIAGE_HEADER):
            raise TriageError(f"{path}:{number}: expected {len(TRIAGE_HEADER)} cells, got {len(cells)}")
        detector, contract, function, impact, reason = cells
        if impact not in IMPACTS:
            raise TriageError(f"{path}:{number}: impact must be one of {', '.join(IMPACTS)}")
        if len(reason) < 20:
            raise TriageError(f"{path}:{number}: the reason must explain why the finding is acceptable")
        entries.append(TriageEntry(detector, contract, function or NONE, impact, reason, number))
    return entries


DECLARATION = re.compile(r"^\s*(?:abstract\s+)?(?:contract|interface|library)\s+([A-Za-z_]\w*)", re.MULTILINE)
IMPORT = re.compile(r"""^\s*import\s+(?:[^'"]*?\bfrom\s+)?["']([^"']+)["']""", re.MULTILINE)


def analysed_sources(targets: list[str]) -> set[Path]:
    """The target files plus every project file they import, transitively (what slither compiled)."""
    todo = [Path(p) for pattern in targets for p in sorted(glob.glob(pattern))]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        for spec in IMPORT.findall(path.read_text(encoding="utf-8", errors="replace")):
            if spec.startswith("."):  # package imports (@openzeppelin/...) are dependencies
                todo.append(Path(os.path.normpath(path.parent / spec)))
    return seen


def declared_contracts(paths: set[Path]) -> list[str]:
    """Names of the contracts, interfaces and libraries declared in ``paths``."""
    names: set[str] = set()
    for path in paths:
        names.update(DECLARATION.findall(path.read_text(encoding="utf-8", errors="replace")))
    return sorted(names)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    out = [fmt.format(*headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt.format(*r) for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, default=Path("reports/slither.json"), help="slither --json output"
    )
    parser.add_argument("--triage", type=Path, default=Path("docs/SLITHER_TRIAGE.md"))
    parser.add_argument("--summary", type=Path, default=Path("reports/slither-summary.md"))
    parser.add_argument(
        "--targets",
        nargs="*",
        default=["contracts/*.sol"],
        help="globs of what slither was run on; their contracts are listed even without findings",
    )
    parser.add_argument(
        "--sources",
        nargs="*",
        default=["contracts/*.sol", "interfaces/*.sol"],
        help="globs of all own sources; those slither did not see are named in the summary",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail on unexplained Low/Informational/Optimization findings",
    )
    args = parser.parse_args(argv)

    try:
        report = json.loads(args.json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"slither gate: cannot read {args.json}: {exc}", file=sys.stderr)
        return 2
    if not report.get("success", False):
        print(f"slither gate: slither failed:\n{report.get('error')}", file=sys.stderr)
        return 2
    try:
        triage = load_triage(args.triage)
    except TriageError as exc:
        print(f"slither gate: {exc}", file=sys.stderr)
        return 1

    findings, foreign = load_findings(report)
    used: set[int] = set()
    unexplained: list[Finding] = []
    for finding in findings:
        entry = next((t for t in triage if t.matches(finding)), None)
        if entry is None:
            unexplained.append(finding)
        else:
            used.add(entry.line)
    stale = [t for t in triage if t.line not in used]

    # --- by impact
    total = Counter(f.impact for f in findings)
    open_ = Counter(f.impact for f in unexplained)
    impact_rows = [[imp, str(total[imp]), str(total[imp] - open_[imp]), str(open_[imp])] for imp in IMPACTS]
    impact_table = _table(["Impact", "Findings", "Triaged", "Unexplained"], impact_rows)

    # --- by contract
    per: dict[str, Counter[str]] = defaultdict(Counter)
    analysed = analysed_sources(args.targets)
    for name in declared_contracts({p for p in analysed if not NOT_OWN.search(p.as_posix())}):
        per[name] = Counter()
    unseen = sorted({Path(p) for g in args.sources for p in glob.glob(g)} - analysed)
    for f in findings:
        per[f.contract][f.impact] += 1
    contract_rows = [
        [c if c != NONE else "(file level)"] + [str(per[c][imp]) for imp in IMPACTS] for c in sorted(per)
    ]
    contract_table = _table(["Contract", *IMPACTS], contract_rows) if contract_rows else "(no findings)"

    blocking = [f for f in unexplained if f.impact in BLOCKING or args.strict]
    lines = ["# Slither summary", "", impact_table, "", contract_table, ""]
    if unexplained:
        lines += ["## Unexplained findings", ""]
        lines += [
            f"- **{f.impact}** `{f.detector}` {f.label} ({f.where}): {f.text[:240]}" for f in unexplained
        ]
        lines.append("")
    if unseen:
        names = ", ".join(p.as_posix() for p in unseen)
        lines += [f"Not analysed (no contract in {' '.join(args.targets)} imports them): {names}", ""]
    if stale:
        lines += ["## Stale triage entries (match no finding; remove them)", ""]
        lines += [f"- line {t.line}: `{t.detector}` {t.contract}.{t.function}" for t in stale]
        lines.append("")
    verdict = "FAIL" if blocking else "PASS"
    mode = "strict: every finding must be triaged" if args.strict else "High/Medium must be triaged"
    lines.append(
        f"{verdict} ({mode}); {len(findings)} own-code finding(s), "
        f"{foreign} dependency-only result(s) ignored."
    )
    text = "\n".join(lines) + "\n"
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(text, encoding="utf-8")
    print(text, end="")
    if blocking:
        print(
            f"slither gate: {len(blocking)} unexplained finding(s): fix them or explain each in "
            f"{args.triage} (detector + contract + function).",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
