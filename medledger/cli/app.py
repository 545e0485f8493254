"""The CLI's shared state: settings, the chain, the signer and output (table or JSON)."""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from eth_utils import is_address, to_checksum_address
from rich.console import Console
from rich.table import Table

from .. import deployments, messages
from ..accounts import Signer, load_signer
from ..chain import Chain
from ..config import Settings
from ..contracts import CareRegistry, ConsentRegistry
from ..errors import ConfigError, NotDeployed
from ..scopes import Role
from ..units import TokenInfo

if TYPE_CHECKING:
    from ..gateway.client import GatewayClient
    from ..pseudonyms import PatientIdentity, Pseudonym

err_console = Console(stderr=True)


@dataclass
class App:
    settings: Settings
    account_spec: str | None
    as_json: bool
    safe: str | None = None
    pairwise: bool = False
    gateway_url: str | None = None
    console: Console = field(default_factory=Console)
    _gateways: dict[tuple[str, str], GatewayClient] = field(default_factory=dict, repr=False)

    @cached_property
    def chain(self) -> Chain:
        chain = Chain(self.settings)
        chain.check_connected()
        chain.messages.token = lambda: self.token
        chain.messages.name_of = lambda address: self.account_names.get(address)
        return chain

    @cached_property
    def account_names(self) -> dict[str, str]:
        """Checksum address -> keystore name, to name parties in messages (no password needed)."""
        from ..accounts import list_keystores
        entries = list_keystores(self.settings.keystore_dir, self.settings.brownie_accounts_dir)
        return {e.address: e.name for e in reversed(entries)}  # the first listed name wins

    @cached_property
    def signer(self) -> Signer:
        if not self.account_spec:
            raise click.UsageError("this command sends a transaction: pass --account NAME (or --keystore FILE)")
        w3 = self.chain.w3 if self.account_spec.startswith("node:") else None
        signer = load_signer(self.account_spec, self.settings.keystore_dir, self.settings.brownie_accounts_dir, w3=w3)
        if self.safe:
            from ..safe import SafeGovernance, SafeProposer, proposals_dir
            if not is_address(self.safe):
                raise click.BadParameter(f"'{self.safe}' is not an Ethereum address (--safe)")
            governance = SafeGovernance(self.chain, to_checksum_address(self.safe))
            return SafeProposer(governance, signer, proposals_dir(governance.address))
        return signer

    # ---------------------------------------------------------------- pairwise pseudonyms (issue #14)
    @cached_property
    def identity(self) -> PatientIdentity:
        """The signer's pseudonyms, one per relationship (see medledger.pseudonyms)."""
        from ..pseudonyms import PatientIdentity
        if self.safe:
            raise click.UsageError("--pairwise acts for a patient; a Safe is not a patient (drop --safe)")
        signer = self.signer
        return PatientIdentity.of(signer, self.chain.chain_id, self.chain.w3)

    @cached_property
    def parties(self) -> list[tuple[str, Role]]:
        """Every registered provider and insurer (the relationships a patient may have)."""
        return self.care.parties()

    def pseudonym_for(self, counterparty: str) -> Pseudonym:
        """The signer's pseudonym for its relationship with the registered provider or insurer `counterparty`."""
        role = dict(self.parties).get(to_checksum_address(counterparty), Role.NONE)
        return self.identity.for_party(counterparty, role)

    def acting_patient(self, patient: str | None, counterparty: str | None = None) -> tuple[Signer, str]:
        """Who signs a patient action and for which patient address.

        Without --pairwise: the signer, for `patient` (a guardian names the patient) or itself. With it: a
        pseudonym address of the signer's signs with that pseudonym's key; any other `patient` means the signer
        acts as a guardian; no `patient` means the signer's pseudonym for `counterparty`."""
        if not self.pairwise:
            return self.signer, patient or self.signer.address
        if patient is None:
            if counterparty is None:
                raise click.UsageError("with --pairwise name the counterparty or the pseudonym (--patient)")
            own = self.pseudonym_for(counterparty)
            return own.signer, own.address
        own = self.identity.find(patient, self.parties)
        return (own.signer, own.address) if own else (self.signer, patient)

    def refuse_pseudonym_transaction(self, signer: Signer, what: str) -> None:
        """A pseudonym never sends a transaction: its gas would link it to whoever funded it."""
        if self.pairwise and signer is not self.signer:
            raise click.UsageError(f"{signer.address} is your pairwise pseudonym: it never sends a transaction "
                                   f"(its gas would link it to you); {what}")

    # ---------------------------------------------------------------- record gateways (docs/GATEWAY.md)
    def gateway(self, url: str | None = None, signer: Signer | None = None) -> GatewayClient:
        """A signed-in SDK client of the record gateway at `url` (default: --gateway / MEDLEDGER_GATEWAY), acting
        as `signer` (default: the --account signer; pass a pseudonym's signer to act as it).

        The one place the CLI builds a `GatewayClient`: it checks that the gateway answers and serves this
        App's chain, then signs in with SIWE. One session per (gateway, signer) for the life of the App."""
        from ..gateway.client import GatewayClient, GatewayClientError

        url = self.gateway_origin(url)
        who = signer or self.signer
        client = self._gateways.get((url, who.address))
        if client is None:
            try:
                client = GatewayClient.connect(url, who, self.chain.chain_id)
            except GatewayClientError as exc:
                if exc.status != 421:
                    raise
                raise ConfigError(f"{exc} (the chain of the RPC {self.settings.rpc_url}): point --rpc/--network at "
                                  "the gateway's chain") from None
            self._gateways[(url, who.address)] = client
        return client

    def gateway_health(self, url: str | None = None) -> dict[str, Any]:
        """The gateway's `/healthz` (chain id, custodian, batch interval), asked without signing in."""
        from ..gateway.client import GatewayClient

        return GatewayClient(self.gateway_origin(url), None, 0).health()

    def gateway_origin(self, url: str | None = None) -> str:
        """`url`, else the --gateway / MEDLEDGER_GATEWAY origin (a usage error when there is none)."""
        url = (url or self.gateway_url or "").rstrip("/")
        if not url:
            raise click.UsageError("no record gateway: pass --gateway URL or set MEDLEDGER_GATEWAY")
        return url

    @cached_property
    def deployment(self) -> deployments.Deployment:
        deployment = deployments.require(self.settings.deployments_path, self.chain.chain_id)
        address = deployment.address("CareRegistry")
        if not self.chain.has_code(address):
            raise NotDeployed(f"no contract at the recorded CareRegistry {address} on chain {self.chain.chain_id}: "
                              "the chain was reset; run `medledger deploy`")
        return deployment

    @cached_property
    def care(self) -> CareRegistry:
        return CareRegistry(self.chain, self.deployment.address("CareRegistry"))

    @cached_property
    def consent(self) -> ConsentRegistry:
        return ConsentRegistry(self.chain, self.deployment.address("ConsentRegistry"))

    @cached_property
    def records(self) -> Any:
        from ..contracts import RecordRegistry
        return RecordRegistry(self.chain, self.deployment.address("RecordRegistry"))

    @cached_property
    def escrow(self) -> Any:
        from ..contracts import ClaimEscrow
        return ClaimEscrow(self.chain, self.deployment.address("ClaimEscrow"))

    @cached_property
    def token(self) -> TokenInfo:
        """The deployment's stablecoin (the one its ClaimEscrow holds): address, symbol, decimals."""
        return self.escrow.token.info()

    def now(self) -> int:
        """Now for a signature's deadline: the chain's latest block time (what the contract compares with),
        or the clock if that is later."""
        return max(int(time.time()), int(self.chain.w3.eth.get_block("latest")["timestamp"]))

    def amount(self, units: int) -> str:
        """`units` base units in token units with the symbol, e.g. "1,240.50 mUSD"."""
        return self.token.format(units)

    def date(self, timestamp: int, unset: str = "") -> Any:
        """A Unix time as shown: the integer with --json, else an ISO UTC date (`unset` for 0)."""
        if self.as_json:
            return timestamp
        return messages.utc(timestamp) if timestamp else unset

    def address_of(self, value: str, what: str = "address") -> str:
        """An address given as 0x... or as the name of a keystore (read without its password)."""
        from eth_utils import is_address, to_checksum_address

        from ..accounts import list_keystores
        if is_address(value):
            return to_checksum_address(value)
        for entry in list_keystores(self.settings.keystore_dir, self.settings.brownie_accounts_dir):
            if entry.name == value:
                return entry.address
        raise click.BadParameter(f"'{value}' is neither an address nor a known account name ({what})")

    # ---------------------------------------------------------------- output
    def emit(self, data: Any, *, title: str | None = None, columns: Sequence[str] | None = None) -> None:
        """Prints `data`: JSON with --json, else a table (lists of dicts) or key/value rows (a dict)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=_json_default))
            return
        if isinstance(data, dict):
            table = Table(title=title, show_header=False)
            table.add_column("field", style="bold")
            table.add_column("value")
            for key, value in data.items():
                table.add_row(str(key), _cell(value))
            self.console.print(table)
        elif isinstance(data, list):
            cols = list(columns or (data[0].keys() if data else []))
            table = Table(title=title)
            for col in cols:
                table.add_column(col)
            for row in data:
                table.add_row(*(_cell(row.get(c)) for c in cols))
            self.console.print(table)
        else:
            click.echo(str(data))

    def done(self, message: str, **fields: Any) -> None:
        """A one-line success message (or a JSON object)."""
        if self.as_json:
            click.echo(json.dumps({"ok": True, "message": message, **fields}, default=_json_default))
        else:
            self.console.print(f"[green]✓[/green] {message}")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def tx_fields(result: Any) -> dict[str, Any]:
    return {"tx": result.tx_hash, "block": result.block_number, "gas_used": result.gas_used}


def iter_chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]
