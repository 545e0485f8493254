"""`medledger patient ...`: a patient's pairwise pseudonyms (issue #14, docs/PRIVACY.md).

Each relationship with a provider or insurer has its own address, derived from the patient's wallet: that
is what the patient gives the counterparty (on a consent it signs, or on an emergency card), and what
records, coverage and claims of that relationship name. These commands show them; nothing is sent."""
from __future__ import annotations

import click
from eth_utils import to_checksum_address

from .app import App
from .options import address_argument


@click.group()
def patient() -> None:
    """A patient's pairwise pseudonyms: one unlinkable address per provider and insurer."""


@patient.command()
@address_argument("counterparty")
@click.pass_obj
def pseudonym(app: App, counterparty: str) -> None:
    """The signer's pseudonym for its relationship with COUNTERPARTY (a registered provider or insurer)."""
    own = app.pseudonym_for(counterparty)
    app.emit({"counterparty": own.counterparty, "relationship": own.kind.value, "pseudonym": own.address},
             title="Pairwise pseudonym")


@patient.command("pseudonyms")
@click.pass_obj
def pseudonyms(app: App) -> None:
    """Every pseudonym of the signer that a consent names on chain, with whom it was granted to."""
    own = {p.address: p for p in app.identity.all(app.parties)}
    used: dict[str, set[str]] = {}
    for log in _grants_of(app, list(own)):
        used.setdefault(to_checksum_address(log["args"]["patient"]), set()).add(
            to_checksum_address(log["args"]["grantee"]))
    rows = [{"pseudonym": address, "relationship": own[address].kind.value, "counterparty": own[address].counterparty,
             "granted to": sorted(grantees)} for address, grantees in used.items()]
    app.emit(rows, title="Pseudonyms in use", columns=["pseudonym", "relationship", "counterparty", "granted to"])


def pseudonyms_in_use(app: App) -> list[str]:
    """The signer's pseudonym addresses that some consent names on chain (for `audit` and `consent list`)."""
    own = [p.address for p in app.identity.all(app.parties)]
    return list(dict.fromkeys(to_checksum_address(log["args"]["patient"]) for log in _grants_of(app, own)))


def _grants_of(app: App, patients: list[str]) -> list:
    """The ConsentGranted logs of any of `patients` (one filtered log request)."""
    if not patients:
        return []
    return app.consent.contract.events.ConsentGranted.get_logs(argument_filters={"patient": patients},
                                                               from_block=0)
