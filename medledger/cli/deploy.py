"""`medledger deploy`: the same code as `brownie run scripts/deploy.py`."""
from __future__ import annotations

import click

from ..deploy import DEFAULT_MAX_BREAK_GLASS, DeployOptions, deploy_suite
from . import cli
from .app import App, parse_address


@cli.command()
@click.option("--token", help="The stablecoin's address (required on live networks; dev chains get a mock).")
@click.option("--admin", help="Governance account to hand admin roles to (default: the deployer).")
@click.option("--registrar", help="First registrar (default: the deployer).")
@click.option("--max-break-glass", type=click.IntRange(1, 72 * 3600), default=DEFAULT_MAX_BREAK_GLASS,
              show_default=True, help="Longest break-glass window, in seconds.")
@click.pass_obj
def deploy(app: App, token, admin, registrar, max_break_glass) -> None:
    """Deploy and wire the suite; re-running resumes or skips what is already deployed."""
    options = DeployOptions(
        admin=admin and parse_address(admin, "--admin"),
        registrar=registrar and parse_address(registrar, "--registrar"),
        token=token and parse_address(token, "--token"),
        max_break_glass=max_break_glass,
    )
    steps = deploy_suite(app.chain, app.signer, options, log=(lambda _: None) if app.as_json else app.console.print)
    app.emit([{"contract": s.name, "address": s.address, "action": s.action, "gas_used": s.gas_used} for s in steps],
             title=f"MedLedger on chain {app.chain.chain_id}", columns=["contract", "address", "action", "gas_used"])
