"""L2 cost report: every measured operation on Ethereum L1, an OP-stack L2 and Arbitrum, in USD.

Execution gas comes from the bench's receipts (same EVM everywhere); the L1 data fee of each L2 from
the operation's signed transaction (`medledger.l2fees`). Prices are the stated defaults of
:class:`medledger.l2fees.FeeMarket` unless the caller passes others. Writes ``reports/l2-costs.json``
and the same table as a picture, ``reports/l2-costs.png``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import brotli

from medledger.l2fees import DEFAULT_MARKET, FeeMarket, Network, flz_compress_len, tx_costs


@dataclass(frozen=True)
class L2Row:
    """One operation's size and cost on each network."""

    op: str
    gas: int
    signed_bytes: int
    fastlz_bytes: int
    brotli_bytes: int
    l1_usd: Decimal
    op_usd: Decimal
    op_data_share: float
    arb_usd: Decimal

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("l1_usd", "op_usd", "arb_usd"):
            d[k] = float(d[k])
        d["op_data_share"] = round(self.op_data_share, 4)
        return d


def l2_rows(measured: Sequence[tuple[str, bytes, int]], market: FeeMarket = DEFAULT_MARKET) -> list[L2Row]:
    """Rows for (op, signed transaction, gas used) triples, e.g. the gas bench's rows (which capture the
    signed bytes when they measure: the bench reverts snapshots, so a transaction may be gone later)."""
    rows = []
    for op, raw, gas in measured:
        costs = tx_costs(raw, gas, market)
        opc = costs[Network.OP_STACK]
        rows.append(L2Row(
            op=op, gas=gas, signed_bytes=len(raw), fastlz_bytes=flz_compress_len(raw),
            brotli_bytes=len(brotli.compress(raw, quality=market.arb_brotli_level)),
            l1_usd=costs[Network.ETHEREUM].usd(market), op_usd=opc.usd(market),
            op_data_share=opc.l1_data_wei / opc.total_wei if opc.total_wei else 0.0,
            arb_usd=costs[Network.ARBITRUM].usd(market)))
    return rows


def market_json(market: FeeMarket) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(market).items()}


def write_reports(rows: Sequence[L2Row], market: FeeMarket, reports_dir: Path) -> tuple[Path, Path]:
    """reports/l2-costs.json and reports/l2-costs.png (a log-scale bar chart, one group per operation)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    data = reports_dir / "l2-costs.json"
    data.write_text(json.dumps({"market": market_json(market), "rows": [r.as_dict() for r in rows]}, indent=2) + "\n")
    picture = reports_dir / "l2-costs.png"
    plot(rows, market, picture)
    return data, picture


def plot(rows: Sequence[L2Row], market: FeeMarket, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = [r.op for r in rows]
    series = [("Ethereum L1", [float(r.l1_usd) for r in rows], "#4c5fd5"),
              ("OP stack (Fjord)", [float(r.op_usd) for r in rows], "#e0463e"),
              ("Arbitrum One", [float(r.arb_usd) for r in rows], "#2f9e8f")]
    fig, ax = plt.subplots(figsize=(12, 0.42 * len(rows) + 1.8))
    height = 0.27
    for k, (label, values, colour) in enumerate(series):
        ax.barh([i + (k - 1) * height for i in range(len(rows))], values, height=height, label=label, color=colour)
    ax.set_yticks(range(len(rows)), ops)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("USD per transaction (log scale)")
    ax.set_title(f"MedLedger: cost per operation at ETH {market.eth_usd} USD, L1 base fee "
                 f"{market.l1_base_fee / 1e9:g} gwei, blob base fee {market.l1_blob_base_fee / 1e9:g} gwei")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def l2_table(rows: Sequence[L2Row]) -> Any:
    from rich.table import Table

    table = Table(title="Cost per operation (USD): Ethereum L1 vs OP stack vs Arbitrum")
    for col in ("operation", "gas", "signed B", "FastLZ B", "L1 $", "OP $", "OP data %", "Arbitrum $"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for r in rows:
        table.add_row(r.op, f"{r.gas:,}", f"{r.signed_bytes:,}", f"{r.fastlz_bytes:,}", f"{r.l1_usd:.4f}",
                      f"{r.op_usd:.6f}", f"{100 * r.op_data_share:.0f}", f"{r.arb_usd:.6f}")
    return table
