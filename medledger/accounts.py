"""Who signs: encrypted keystores, brownie's account store, a key in an environment variable,
or an account the local development node holds unlocked.

No private key is ever written to disk in plaintext: `create_keystore` and `import_key` write
eth-account (scrypt) keyfiles only.

Account specs understood by `load_signer`:

* ``keystore:NAME`` or ``keystore:/path/to/file.json`` - a MedLedger keystore
* ``brownie:NAME`` - a key saved with ``brownie accounts new/generate``
* ``env:VAR`` - a hex private key in the environment variable ``VAR`` (for CI)
* ``node:ADDRESS`` or ``node:INDEX`` - an account unlocked on a development node
* ``NAME`` - a MedLedger keystore, else a brownie account of that name
"""
from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from .errors import AccountError

PASSWORD_ENV = "MEDLEDGER_PASSWORD"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Signer(Protocol):
    """Anything that can send transactions and sign typed data for one address."""

    address: str

    def send_transaction(self, w3: Any, tx: dict) -> bytes: ...

    def sign_typed_data(self, w3: Any, typed_data: dict) -> bytes: ...

    def sign_message(self, w3: Any, message: bytes) -> bytes: ...


@dataclass(frozen=True)
class LocalSigner:
    """A key held in this process (decrypted from a keystore or read from the environment)."""

    account: LocalAccount

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def private_key(self) -> bytes:
        return bytes(self.account.key)

    def send_transaction(self, w3: Any, tx: dict) -> bytes:
        signed = self.account.sign_transaction(tx)
        return bytes(w3.eth.send_raw_transaction(signed.raw_transaction))

    def sign_typed_data(self, w3: Any, typed_data: dict) -> bytes:
        return bytes(self.account.sign_message(encode_typed_data(full_message=typed_data)).signature)

    def sign_message(self, w3: Any, message: bytes) -> bytes:
        return bytes(self.account.sign_message(encode_defunct(primitive=message)).signature)


@dataclass(frozen=True)
class NodeSigner:
    """An account the (development) node holds unlocked; the node signs."""

    address: str

    def send_transaction(self, w3: Any, tx: dict) -> bytes:
        return bytes(w3.eth.send_transaction({**tx, "from": self.address}))

    def sign_typed_data(self, w3: Any, typed_data: dict) -> bytes:
        result = w3.provider.make_request("eth_signTypedData_v4", [self.address, json.dumps(typed_data)])
        if "error" in result:
            raise AccountError(f"the node cannot sign for {self.address}: {result['error'].get('message')}")
        return bytes.fromhex(result["result"][2:])

    def sign_message(self, w3: Any, message: bytes) -> bytes:
        return bytes(w3.eth.sign(self.address, data=message))


def _password(prompt_for: str, password: str | None, ask: Callable[[str], str] | None) -> str:
    if password is not None:
        return password
    if os.environ.get(PASSWORD_ENV) is not None:
        return os.environ[PASSWORD_ENV]
    if ask is not None:
        return ask(prompt_for)
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for {prompt_for}: ")
    raise AccountError(f"a password is needed for {prompt_for}: set {PASSWORD_ENV} or run in a terminal")


def _decrypt(path: Path, label: str, password: str | None, ask: Callable[[str], str] | None) -> LocalSigner:
    try:
        keyfile = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AccountError(f"cannot read keystore {path}: {exc}") from None
    try:
        key = Account.decrypt(keyfile, _password(label, password, ask))
    except ValueError:
        raise AccountError(f"wrong password for account '{label}'") from None
    return LocalSigner(Account.from_key(key))


def keystore_path(keystore_dir: Path, name: str) -> Path:
    """The file that holds the keystore called `name`."""
    if not _NAME.match(name):
        raise AccountError(f"invalid account name '{name}': use letters, digits, '.', '_' or '-'")
    return keystore_dir / f"{name}.json"


def load_signer(
    spec: str,
    keystore_dir: Path,
    brownie_dir: Path,
    w3: Any | None = None,
    password: str | None = None,
    ask: Callable[[str], str] | None = None,
) -> Signer:
    """The signer named by `spec` (see the module docstring)."""
    kind, _, rest = spec.partition(":")
    if not rest:
        kind, rest = "", spec
    if kind == "env":
        value = os.environ.get(rest)
        if not value:
            raise AccountError(f"environment variable {rest} holds no private key")
        try:
            return LocalSigner(Account.from_key(value.strip()))
        except (ValueError, TypeError):
            raise AccountError(f"environment variable {rest} does not hold a valid private key") from None
    if kind == "node":
        if w3 is None:
            raise AccountError("node accounts need a connected chain")
        accounts = list(w3.eth.accounts)
        if rest.isdigit():
            index = int(rest)
            if index >= len(accounts):
                raise AccountError(f"the node has no account #{index} (it has {len(accounts)})")
            return NodeSigner(to_checksum_address(accounts[index]))
        try:
            address = to_checksum_address(rest)
        except ValueError:
            raise AccountError(f"'{rest}' is not an address") from None
        if address.lower() not in {a.lower() for a in accounts}:
            raise AccountError(f"the node does not hold account {address}")
        return NodeSigner(address)
    if kind == "keystore":
        path = Path(rest) if rest.endswith(".json") or "/" in rest else keystore_path(keystore_dir, rest)
        if not path.is_file():
            raise AccountError(f"unknown account '{rest}': no keystore at {path}")
        return _decrypt(path, rest, password, ask)
    if kind == "brownie":
        path = brownie_dir / f"{rest}.json"
        if not path.is_file():
            raise AccountError(f"unknown brownie account '{rest}' (no {path})")
        return _decrypt(path, rest, password, ask)
    if kind == "":
        if rest.endswith(".json") and Path(rest).is_file():
            return _decrypt(Path(rest), rest, password, ask)
        if _NAME.match(rest):
            for path in (keystore_dir / f"{rest}.json", brownie_dir / f"{rest}.json"):
                if path.is_file():
                    return _decrypt(path, rest, password, ask)
        raise AccountError(f"unknown account '{rest}' (not in {keystore_dir} nor {brownie_dir})")
    raise AccountError(f"unknown account kind '{kind}' in '{spec}' (use keystore:, brownie:, env: or node:)")


@dataclass(frozen=True)
class KeystoreEntry:
    """One keystore file: its name and the address it holds (readable without the password)."""

    name: str
    address: str
    path: Path


def _write_keyfile(path: Path, keyfile: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise AccountError(f"account '{path.stem}' exists already ({path})")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(keyfile, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def import_key(keystore_dir: Path, name: str, private_key: str, password: str) -> KeystoreEntry:
    """Encrypts `private_key` under `password` into the keystore `name`."""
    path = keystore_path(keystore_dir, name)
    if len(password) < 8:
        raise AccountError("a keystore password needs at least 8 characters")
    try:
        account = Account.from_key(private_key.strip())
    except (ValueError, TypeError):
        raise AccountError("that is not a valid private key (64 hex digits)") from None
    _write_keyfile(path, Account.encrypt(account.key, password))
    return KeystoreEntry(name, account.address, path)


def create_keystore(keystore_dir: Path, name: str, password: str) -> KeystoreEntry:
    """A new random key, encrypted under `password` into the keystore `name`."""
    return import_key(keystore_dir, name, Account.create().key.hex(), password)


def list_keystores(*dirs: Path) -> list[KeystoreEntry]:
    """Every keyfile in `dirs`, with its address (from the file's public part)."""
    entries = []
    for directory in dirs:
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
            try:
                address = json.loads(path.read_text()).get("address", "")
                entries.append(KeystoreEntry(path.stem, to_checksum_address("0x" + address.removeprefix("0x")), path))
            except (ValueError, OSError):
                continue
    return entries
