"""`medledger dev ...`: helpers for development chains and testnets (a mock stablecoin)."""
from __future__ import annotations

import click

from . import cli
from .app import App, resolve_address, tx_fields


@cli.group()
def dev() -> None:
    """Development helpers: a 6-decimal test stablecoin with permit."""


@dev.command("deploy-token")
@click.pass_obj
def deploy_token(app: App) -> None:
    """Deploy a mock 6-decimal stablecoin with permit (anyone may mint: tests and testnets only)."""
    contract, result = app.chain.deploy(app.signer, "MockStablecoin")
    app.done(f"mock stablecoin deployed at {contract.address}", address=contract.address, **tx_fields(result))


@dev.command()
@click.argument("to")
@click.argument("amount", type=click.IntRange(1))
@click.option("--token", help="Token address (default: the deployment's stablecoin).")
@click.pass_obj
def mint(app: App, to: str, amount: int, token: str | None) -> None:
    """Mint AMOUNT (smallest units) of the mock stablecoin to TO."""
    address = token or app.deployment.address("Stablecoin")
    contract = app.chain.contract("MockStablecoin", address)
    result = app.chain.transact(app.signer, contract.functions.mint(resolve_address(app, to, "TO"), amount))
    app.done(f"minted {amount} to {to}", **tx_fields(result))
