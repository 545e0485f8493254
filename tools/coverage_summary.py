#!/usr/bin/env python3
"""Summarise brownie's coverage report for MedLedger's own contracts and gate on branch coverage.

Brownie 1.22 writes ``reports/coverage.json`` (the ``reports`` folder of brownie-config.yaml) at the
end of ``brownie test --coverage``. Its ``coverage`` section lists only functions that contain a
branch (a function without one, e.g. a plain setter or view, is missing entirely), so this tool
counts from the ``highlights`` section instead - every statement and branch of every source file of
each exercised contract, coloured by what the tests executed - and attributes each item to its
function and line through the ``coverageMap`` of the build artifact.

Only the project's own sources count: dependencies (``node_modules/``) and test-only contracts
(``contracts/test/``) are left out. A deployable project contract that the tests never touched is
reported at 0 % instead of being silently skipped. Branch coverage follows brownie: every branch has
two directions, and each direction counts once it has been taken.

Exit status: 0 when the total branch coverage reaches ``--min-branch`` (default 95), 1 below it,
2 when the report is missing or does not match the build.
"""

from __future__ import annotations

import argparse
import json
import sys
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Branch highlight colour -> directions taken (brownie.test.output._branch_color).
BRANCH_DIRECTIONS = {"green": 2, "yellow": 1, "orange": 1, "red": 0}
DEFAULT_REPORTS = (Path("reports/coverage.json"), Path("build/reports/coverage.json"))
MAX_PRINTED_GAPS = 25


class ReportError(Exception):
    """The coverage report is missing, malformed or stale."""


@dataclass(frozen=True, order=True)
class Gap:
    """One statement or branch direction the tests did not execute."""

    source: str
    line: int
    function: str
    what: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line} {self.function}: {self.what}" if self.source else self.what


@dataclass
class Tally:
    """Statement and branch counts for one contract, or for the total."""

    statements_hit: int = 0
    statements: int = 0
    directions_hit: int = 0
    branches: int = 0
    gaps: list[Gap] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.statements_hit += other.statements_hit
        self.statements += other.statements
        self.directions_hit += other.directions_hit
        self.branches += other.branches
        self.gaps += other.gaps

    @property
    def statement_pct(self) -> float:
        return 100.0 * self.statements_hit / self.statements if self.statements else 100.0

    @property
    def branch_pct(self) -> float:
        return 100.0 * self.directions_hit / (2 * self.branches) if self.branches else 100.0


def is_own_source(path: str) -> bool:
    return path.startswith("contracts/") and not path.startswith("contracts/test/")


class SourceLines:
    """Byte offset -> line number, per source file (read lazily)."""

    def __init__(self) -> None:
        self._newlines: dict[str, list[int]] = {}

    def line(self, path: str, offset: int) -> int:
        if path not in self._newlines:
            try:
                data = Path(path).read_bytes()
            except OSError:
                data = b""
            self._newlines[path] = [i for i, byte in enumerate(data) if byte == 0x0A]
        return bisect_left(self._newlines[path], offset) + 1


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {path}: {exc}") from exc


def tally_contract(
    name: str, artifact: dict[str, Any], highlights: dict[str, Any] | None, lines: SourceLines
) -> Tally:
    """Counts for one deployed contract; ``highlights`` is None when the tests never touched it."""
    paths: dict[str, str] = artifact.get("allSourcePaths", {})
    cmap = artifact.get("coverageMap") or {"statements": {}, "branches": {}}
    stale = (
        f"{name}: the coverage report does not match build/contracts/{name}.json "
        "(recompiled since the test run?); rerun the coverage tests"
    )
    tally = Tally()
    for kind in ("statements", "branches"):
        for path_id, functions in cmap.get(kind, {}).items():
            source = paths.get(path_id, "")
            if not is_own_source(source):
                continue
            # Each highlight is [start, stop, colour, ...] for one item of the coverageMap; they are
            # matched on their source offsets (brownie does not keep the map's order), and an item
            # without a highlight, or a count mismatch, means a report older than the build.
            marks = None if highlights is None else highlights.get(kind, {}).get(path_id, [])
            if marks is not None and len(marks) != sum(len(items) for items in functions.values()):
                raise ReportError(stale)
            colours = None if marks is None else {(int(m[0]), int(m[1])): m[2] for m in marks}
            for function, items in functions.items():
                for offsets in items.values():
                    colour = "red"
                    if colours is not None:
                        key = (int(offsets[0]), int(offsets[1]))
                        if key not in colours:
                            raise ReportError(stale)
                        colour = colours[key]
                    if kind == "statements":
                        taken, possible, what = int(colour == "green"), 1, "statement never executed"
                        tally.statements += 1
                        tally.statements_hit += taken
                    else:
                        taken, possible = BRANCH_DIRECTIONS.get(colour, 0), 2
                        what = "branch never reached" if taken == 0 else "branch taken one way only"
                        tally.branches += 1
                        tally.directions_hit += taken
                    if taken < possible and marks is not None:
                        tally.gaps.append(Gap(source, lines.line(source, int(offsets[0])), function, what))
    tally.gaps.sort()
    if highlights is None:
        tally.gaps = [Gap("", 0, "", f"{name} is never deployed or called by the tests")]
    return tally


def summarise(report: dict[str, Any], build: Path, only: set[str] | None = None) -> dict[str, Tally]:
    """Per-contract tallies for every own deployable contract (restricted to ``only`` if given)."""
    highlights = report.get("highlights") or {}
    statements = highlights.get("statements") or {}
    branches = highlights.get("branches") or {}
    lines = SourceLines()
    result: dict[str, Tally] = {}
    for artifact_path in sorted((build / "contracts").glob("*.json")):
        artifact = _load_json(artifact_path)
        name = artifact.get("contractName", artifact_path.stem)
        if not is_own_source(artifact.get("sourcePath", "")) or (only and name not in only):
            continue
        touched = name in statements or name in branches
        if not touched and (artifact.get("type") != "contract" or not artifact.get("deployedBytecode")):
            continue  # interfaces, libraries and abstract contracts are counted inside their users
        contract_highlights = (
            {"statements": statements.get(name, {}), "branches": branches.get(name, {})} if touched else None
        )
        result[name] = tally_contract(name, artifact, contract_highlights, lines)
    return result


def _table(tallies: dict[str, Tally], total: Tally) -> list[str]:
    def row(name: str, t: Tally) -> tuple[str, ...]:
        return (
            name,
            f"{t.statements_hit}/{t.statements}",
            f"{t.statement_pct:.1f}%",
            f"{t.directions_hit}/{2 * t.branches}",
            f"{t.branch_pct:.1f}%",
        )

    rows = [row(name, t) for name, t in sorted(tallies.items())] + [row("Total", total)]
    headers = ("Contract", "Statements", "Statement %", "Branch directions", "Branch %")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    return [fmt.format(*headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [
        fmt.format(*r) for r in rows
    ]


def render(
    tallies: dict[str, Tally], total: Tally, minimum: float, source: Path, max_gaps: int | None
) -> str:
    verdict = "PASS" if total.branch_pct >= minimum else "FAIL"
    out = [
        "# Coverage summary",
        "",
        f"From `{source}` (`brownie test --coverage`); own contracts only "
        "(no node_modules, no contracts/test).",
        "",
        *_table(tallies, total),
        "",
        f"{verdict}: total branch coverage {total.branch_pct:.2f}% (minimum {minimum:g}%), "
        f"statement coverage {total.statement_pct:.2f}%.",
    ]
    gaps = [gap for _, t in sorted(tallies.items()) for gap in t.gaps]
    if gaps:
        out += ["", "## Not covered", ""]
        shown = gaps if max_gaps is None else gaps[:max_gaps]
        out += [f"- {gap}" for gap in shown]
        if len(shown) < len(gaps):
            out.append(f"- ... and {len(gaps) - len(shown)} more")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="coverage.json (default: reports/coverage.json)")
    parser.add_argument("--build", type=Path, default=Path("build"), help="brownie build folder")
    parser.add_argument("--out", type=Path, default=Path("reports/coverage-summary.md"))
    parser.add_argument(
        "--min-branch", type=float, default=95.0, help="minimum total branch coverage, percent"
    )
    parser.add_argument("--only", nargs="+", metavar="CONTRACT", help="count only these contracts")
    args = parser.parse_args(argv)

    report_path = args.report or next((p for p in DEFAULT_REPORTS if p.exists()), DEFAULT_REPORTS[0])
    try:
        tallies = summarise(_load_json(report_path), args.build, set(args.only or ()))
    except ReportError as exc:
        print(f"coverage summary: {exc}", file=sys.stderr)
        return 2
    if not tallies:
        print(f"coverage summary: no matching project contracts in {args.build}/contracts", file=sys.stderr)
        return 2
    total = Tally()
    for tally in tallies.values():
        total.add(tally)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(tallies, total, args.min_branch, report_path, None), encoding="utf-8")
    print(render(tallies, total, args.min_branch, report_path, MAX_PRINTED_GAPS), end="")
    if len(total.gaps) > MAX_PRINTED_GAPS:
        print(f"(full list in {args.out})")
    return 0 if total.branch_pct >= args.min_branch else 1


if __name__ == "__main__":
    sys.exit(main())
