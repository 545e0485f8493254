"""The end-to-end MedLedger scenario on the active (development) network: `make demo`.

The story lives beside this script in `scripts/demo_scenario.py`; this entry point only hands it
brownie's chain.
"""
from pathlib import Path

from brownie import web3
from rich.console import Console

from scripts.demo_scenario import print_summary, run_scenario


def main(batch_size: int = 1000):
    console = Console()
    workdir = Path(__file__).resolve().parent.parent / "build" / "demo"
    result = run_scenario(web3.provider.endpoint_uri, workdir, console, batch_size=int(batch_size))
    print_summary(result, console)
    console.print(f"[green]Demo complete.[/green] Off-chain files (vault, sealed blobs, FHIR) are in {workdir}")
    return result
