"""`medledger deploy`: the same code as `brownie run scripts/deploy.py`."""
from __future__ import annotations

import click

from ..deploy import DEFAULT_MAX_BREAK_GLASS, DeployOptions, deploy_suite
from .app import App
from .options import address_option


@click.command()
@address_option("--token", help="The stablecoin's address (required on live networks; dev chains get a mock). "
                                "Recorded in the deployments file: one token per deployment.")
@address_option("--admin", help="Governance account to hand admin roles to (default: the deployer).")
@address_option("--registrar", help="First registrar (default: the deployer).")
@click.option("--max-break-glass", type=click.IntRange(1, 72 * 3600), default=DEFAULT_MAX_BREAK_GLASS,
              show_default=True, help="Longest break-glass window, in seconds.")
@click.pass_obj
def deploy(app: App, token: str | None, admin: str | None, registrar: str | None, max_break_glass: int) -> None:
    """Deploy and wire the suite; re-running resumes or skips what is already deployed."""
    options = DeployOptions(admin=admin, registrar=registrar, token=token, max_break_glass=max_break_glass)
    steps = deploy_suite(app.chain, app.signer, options, log=(lambda _: None) if app.as_json else app.console.print)
    app.emit([{"contract": s.name, "address": s.address, "action": s.action, "gas_used": s.gas_used} for s in steps],
             title=f"MedLedger on chain {app.chain.chain_id}", columns=["contract", "address", "action", "gas_used"])
