"""`medledger registry ...`: credentialing (registrars) and party lookups."""
from __future__ import annotations

from pathlib import Path

import click

from ..scopes import Role
from .app import App, tx_fields
from .options import address_argument, bytes32_option, commitment
from .paramtypes import GATEWAY_URL


@click.group()
def registry() -> None:
    """Register, suspend and look up providers, insurers and arbiters."""


def _add(role: Role):
    @address_argument("account")
    @bytes32_option("--metadata", help="bytes32 commitment to the off-chain credentials.")
    @click.option("--credentials", "credentials_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="Credentials document to commit to (salted hash; the salt is kept in FILE.salt.json, "
                       "the file never leaves).")
    @click.pass_obj
    def command(app: App, account: str, metadata: bytes | None, credentials_file: Path | None) -> None:
        address = account
        credentials = commitment(credentials_file, metadata, "--metadata")
        result = app.care.register(app.signer, address, role, credentials.value)
        app.done(f"registered {address} as {role.name.lower()}{credentials.note()}", account=address,
                 **credentials.saved(app, result), **tx_fields(result))
    command.__doc__ = (f"Register ACCOUNT as {role.name.lower()} "
                       + ("(the governor)." if role == Role.ARBITER else "(registrars only)."))
    return command


registry.command("add-provider")(_add(Role.PROVIDER))
registry.command("add-insurer")(_add(Role.INSURER))
registry.command("add-arbiter")(_add(Role.ARBITER))


@registry.command()
@address_argument("account")
@bytes32_option("--reason", default="0x" + "00" * 32, help="bytes32 reason code.")
@click.pass_obj
def suspend(app: App, account: str, reason: bytes) -> None:
    """Suspend ACCOUNT: it loses its rights in every MedLedger contract at once."""
    address = account
    result = app.care.suspend(app.signer, address, reason)
    app.done(f"suspended {address}", account=address, **tx_fields(result))


@registry.command()
@address_argument("account")
@click.pass_obj
def reinstate(app: App, account: str) -> None:
    """Reinstate a suspended ACCOUNT (the governor; a governed deployment: `governance schedule reinstate`)."""
    address = account
    result = app.care.reinstate(app.signer, address)
    app.done(f"reinstated {address}", account=address, **tx_fields(result))


@registry.command("assign-arbiter")
@address_argument("insurer")
@address_argument("arbiter")
@click.pass_obj
def assign_arbiter(app: App, insurer: str, arbiter: str) -> None:
    """Assign ARBITER to resolve INSURER's disputes (the governor; a governed deployment: `governance schedule
    assign-arbiter`)."""
    result = app.care.assign_arbiter(app.signer, insurer, arbiter)
    app.done(f"assigned arbiter {arbiter} to insurer {insurer}", insurer=insurer, arbiter=arbiter, **tx_fields(result))


@registry.command()
@address_argument("account")
@click.pass_obj
def show(app: App, account: str) -> None:
    """Show ACCOUNT's role, status, credentials commitment, encryption key and gateway endpoint (a party that
    migrated away from ACCOUNT is shown under its new address, with `migrated_from`)."""
    party = app.care.party(account)
    app.emit({"address": party.address, "role": party.role.name.lower(), "active": party.active,
              "registered_at": app.date(party.registered_at, "never"), "metadata_hash": party.metadata_hash,
              "encryption_key": party.encryption_key, "gateway_endpoint": party.gateway_endpoint,
              "party_id": party.party_id, "home": party.home, "migrated_from": party.migrated_from}, title="Party")


@registry.command("publish-key")
@click.pass_obj
def publish_key(app: App) -> None:
    """Publish the signer's secp256k1 public key so record keys can be wrapped to it."""
    from eth_keys import keys as eth_keys
    signer = app.signer
    if not hasattr(signer, "private_key"):
        raise click.UsageError("publish-key needs a local key (keystore, brownie or env account)")
    public = eth_keys.PrivateKey(signer.private_key).public_key.to_compressed_bytes()
    result = app.care.publish_encryption_key(signer, public)
    app.done(f"published encryption key of {signer.address}", key="0x" + public.hex(), **tx_fields(result))


@registry.group()
def endpoint() -> None:
    """Publish, show and withdraw a custodian's record gateway endpoint (public, on chain)."""


@endpoint.command("set")
@click.argument("url", type=GATEWAY_URL)
@click.pass_obj
def endpoint_set(app: App, url: str) -> None:
    """Publish URL (the gateway's https origin) as the signer's gateway endpoint (an active provider or insurer).

    Nothing is sent when URL is published already."""
    signer = app.signer
    result = app.care.set_gateway_endpoint(signer, url)
    if result is None:
        app.done(f"{signer.address} publishes {url} already: nothing sent", account=signer.address, url=url,
                 tx=None)
        return
    app.done(f"{signer.address} published its gateway endpoint {url}", account=signer.address, url=url,
             **tx_fields(result))


@endpoint.command("clear")
@click.pass_obj
def endpoint_clear(app: App) -> None:
    """Withdraw the signer's gateway endpoint (nothing is sent when none is published)."""
    signer = app.signer
    result = app.care.clear_gateway_endpoint(signer)
    if result is None:
        app.done(f"{signer.address} publishes no gateway endpoint: nothing sent", account=signer.address, tx=None)
        return
    app.done(f"{signer.address} withdrew its gateway endpoint", account=signer.address, **tx_fields(result))


@endpoint.command("show")
@address_argument("party")
@click.pass_obj
def endpoint_show(app: App, party: str) -> None:
    """The gateway endpoint PARTY published (its record gateway's origin), or that it publishes none."""
    url = app.care.gateway_endpoint(party)
    if app.as_json:
        app.emit({"party": party, "url": url})
    elif url is None:
        click.echo(f"{app.account_names.get(party, party)} publishes no gateway endpoint")
    else:
        click.echo(url)
