"""`medledger dev ...`: helpers for development chains and testnets (a mock stablecoin)."""
from __future__ import annotations

import click

from ..deploy import deploy_mock_token, require_mock_token
from .app import App, tx_fields
from .options import address_argument


@click.group()
def dev() -> None:
    """Development helpers: a 6-decimal test stablecoin with permit."""


@dev.command("deploy-token")
@click.pass_obj
def deploy_token(app: App) -> None:
    """Deploy a mock 6-decimal stablecoin with permit (anyone may mint: tests and testnets only) and record it
    as the deployment's token (`deploy` uses it; a live network still names it with --token). Refused once
    the deployment has a token."""
    address, result = deploy_mock_token(app.chain, app.signer)
    app.done(f"mock stablecoin deployed at {address} and recorded as this deployment's token", address=address,
             **tx_fields(result))


@dev.command()
@address_argument("to")
@click.argument("amount", type=click.IntRange(1))
@click.pass_obj
def mint(app: App, to: str, amount: int) -> None:
    """Mint AMOUNT (smallest units, e.g. 1000000 = 1.00 of a 6-decimal token) of the deployment's mock
    stablecoin to TO. Refused when the deployment uses an external token."""
    token = require_mock_token(app.chain, app.deployment)
    contract = app.chain.contract("MockStablecoin", token)
    result = app.chain.transact(app.signer, contract.functions.mint(to, amount))
    app.done(f"minted {app.amount(amount)} to {to}", amount=amount, **tx_fields(result))
