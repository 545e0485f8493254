"""`medledger safe`: create a Safe, and confirm, show and execute proposals made with `medledger --safe`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .app import App
from .paramtypes import ADDRESS

if TYPE_CHECKING:  # safe-eth-py (and py-evm behind it) load only when a Safe command runs
    from ..safe import SafeGovernance, SafeProposal

PROPOSAL = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def safe() -> None:
    """Safe multisig governance: every transaction of the CLI can be proposed with `medledger --safe ADDRESS`."""


@safe.command()
@click.option("--owner", "owners", type=ADDRESS, multiple=True, required=True,
              help="An owner: address or account name (repeat for each).")
@click.option("--threshold", type=click.IntRange(1), required=True, help="Signatures needed to execute.")
@click.option("--salt", type=click.IntRange(0), default=0, show_default=True, help="Proxy salt (distinct Safes).")
@click.pass_obj
def create(app: App, owners: tuple[str, ...], threshold: int, salt: int) -> None:
    """Create a Safe (on a development chain the Safe 1.4.1 contracts are deployed first if missing)."""
    from ..safe import create_safe

    address = create_safe(app.chain, app.signer, list(owners), threshold, salt)
    app.emit({"safe": address, "owners": ", ".join(owners), "threshold": threshold}, title="Safe created")


def _governance(app: App, proposal: SafeProposal) -> SafeGovernance:
    from ..safe import SafeGovernance

    return SafeGovernance(app.chain, proposal.safe)


def _load(path: Path) -> SafeProposal:
    from ..safe import SafeProposal

    return SafeProposal.load(path)


@safe.command()
@click.argument("proposal_file", type=PROPOSAL)
@click.pass_obj
def show(app: App, proposal_file: Path) -> None:
    """What a proposal does and who has signed it."""
    proposal = _load(proposal_file)
    governance = _governance(app, proposal)
    app.emit({"safe": proposal.safe, "to": proposal.to, "data": proposal.data, "nonce": proposal.nonce,
              "safeTxHash": proposal.safe_tx_hash, "signed by": ", ".join(governance.valid_signers(proposal)) or "-",
              "threshold": governance.threshold(), "owners": ", ".join(governance.owners())},
             title=f"Safe proposal {proposal_file.name}")


@safe.command()
@click.argument("proposal_file", type=PROPOSAL)
@click.pass_obj
def confirm(app: App, proposal_file: Path) -> None:
    """Add your signature (--account, an owner) to a proposal file."""
    proposal = _load(proposal_file)
    governance = _governance(app, proposal)
    signed = governance.confirm(proposal, app.signer)
    signed.save(proposal_file)
    app.emit({"safeTxHash": signed.safe_tx_hash, "signatures": len(governance.valid_signers(signed)),
              "threshold": governance.threshold(), "file": str(proposal_file)}, title="Signature added")


@safe.command()
@click.argument("proposal_file", type=PROPOSAL)
@click.pass_obj
def execute(app: App, proposal_file: Path) -> None:
    """Submit a proposal that has enough signatures (--account pays the gas; any account may)."""
    proposal = _load(proposal_file)
    result = _governance(app, proposal).execute(proposal, app.signer)
    app.emit({"safeTxHash": proposal.safe_tx_hash, "tx": result.tx_hash, "block": result.block_number,
              "gas_used": result.gas_used}, title="Safe transaction executed")
