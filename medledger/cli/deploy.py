"""`medledger deploy`: the same code as `brownie run scripts/deploy.py`."""
from __future__ import annotations

import click

from ..config import PROFILES
from ..deploy import DEFAULT_MAX_BREAK_GLASS, DeployOptions, deploy_suite, preview_suite
from .app import App
from .options import address_option


@click.command()
@address_option("--token", help="The stablecoin's address (required on live networks; dev chains get a mock). "
                                "Recorded in the deployments file: one token per deployment.")
@address_option("--admin", help="The governance Safe (default: the deployer keeps governing). A TimelockController "
                                "is deployed with the Safe as proposer and canceller and receives the governor and "
                                "admin roles; the Safe receives the pauser role; the deployer renounces its own.")
@address_option("--registrar", help="First registrar (default: the deployer; a deployer that was the registrar "
                                    "renounces the role once this one holds it).")
@click.option("--max-break-glass", type=click.IntRange(1, 72 * 3600), default=DEFAULT_MAX_BREAK_GLASS,
              show_default=True, help="Longest break-glass window, in seconds.")
@click.option("--timelock-delay", type=click.IntRange(0), default=None,
              help="The timelock's minimum delay in seconds, with --admin [default: 172800 (2 days); 3600 on a "
                   "development chain; a recorded timelock keeps its own].")
@click.option("--dry-run", is_flag=True, help="Estimate the gas and cost of each deployment; send nothing.")
@click.pass_obj
def deploy(app: App, token: str | None, admin: str | None, registrar: str | None, max_break_glass: int,
           timelock_delay: int | None, dry_run: bool) -> None:
    """Deploy and wire the suite; re-running resumes or skips what is already deployed."""
    options = DeployOptions(admin=admin, registrar=registrar, token=token, max_break_glass=max_break_glass,
                            timelock_delay=timelock_delay)
    if dry_run:
        profile = PROFILES.get(app.settings.network)
        lines = preview_suite(app.chain, app.signer.address, options, profile.fee_model if profile else "ethereum")
        rows = [{"contract": x.name, "gas": x.gas, "bytes": x.signed_bytes, "L1 data fee (ETH)": _eth(x.l1_data_wei),
                 "cost at max fee (ETH)": _eth(x.fee_wei)} for x in lines]
        rows.append({"contract": "total", "gas": sum(x.gas for x in lines), "bytes": sum(x.signed_bytes for x in lines),
                     "L1 data fee (ETH)": _eth(sum(x.l1_data_wei for x in lines)),
                     "cost at max fee (ETH)": _eth(sum(x.fee_wei for x in lines))})
        omitted = "" if options.token else "; ClaimEscrow needs --token to be estimated"
        app.emit(rows, title=f"Dry run on chain {app.chain.chain_id} (nothing sent; role wiring adds a few "
                             f"small transactions{omitted})", columns=list(rows[0]))
        return
    steps = deploy_suite(app.chain, app.signer, options, log=(lambda _: None) if app.as_json else app.console.print)
    app.emit([{"contract": s.name, "address": s.address, "action": s.action, "gas_used": s.gas_used} for s in steps],
             title=f"MedLedger on chain {app.chain.chain_id}", columns=["contract", "address", "action", "gas_used"])


def _eth(wei: int) -> str:
    return f"{wei / 10**18:.6f}"
