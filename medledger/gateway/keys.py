"""The custodian gateway's sealing key, its keyring on disk, and key rotation.

Every record the gateway stores is sealed (medledger.crypto) with its data key wrapped for two
parties only: the patient and the gateway's current key. No reader holds a standing key; the gateway
opens the record at each authorised read (see docs/GATEWAY.md).

The keyring is a directory of Ethereum keystore files ``gateway-key-<n>.json`` (scrypt, password from
``MEDLEDGER_GATEWAY_KEY_PASSWORD``); the highest ``n`` is current. `rotate` creates key ``n+1``, wraps
the data key of every stored record version for it (rows of ``gw_key_wraps``: the anchored envelopes,
whose hashes are on chain, are never rewritten), and then deletes the older key files, so a stolen
old key file opens nothing the gateway still serves.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import ecies
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from sqlalchemy import insert, select

from .. import crypto
from ..errors import AccountError, DecryptionFailed
from ..vault import LocalVault, atomic_write
from . import store as T
from .store import Store

_NAME = re.compile(r"^gateway-key-(\d+)\.json$")


@dataclass(frozen=True)
class GatewayKey:
    number: int
    address: str
    private_key: bytes

    @property
    def public_key(self) -> bytes:
        return crypto.public_key_of(self.private_key)


class Keyring:
    """The gateway's keys in ``directory``."""

    def __init__(self, directory: Path, password: str) -> None:
        self.directory = Path(directory)
        self.password = password

    def _files(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found)

    def _load(self, number: int, path: Path) -> GatewayKey:
        try:
            key = bytes(Account.decrypt(json.loads(path.read_text()), self.password))
        except ValueError:
            raise AccountError(f"cannot open the gateway key {path}: wrong password "
                               "(MEDLEDGER_GATEWAY_KEY_PASSWORD)") from None
        except OSError as exc:
            raise AccountError(f"cannot read the gateway key {path}: {exc}") from None
        return GatewayKey(number, Account.from_key(key).address, key)

    def current(self, create: bool = True) -> GatewayKey:
        files = self._files()
        if not files:
            if not create:
                raise AccountError(f"no gateway key in {self.directory}; run `medledger gateway serve` once")
            return self._create(1)
        return self._load(*files[-1])

    def _create(self, number: int) -> GatewayKey:
        self.directory.mkdir(parents=True, exist_ok=True)
        account = Account.create()
        keyfile = Account.encrypt(account.key, self.password)
        path = self.directory / f"gateway-key-{number}.json"
        atomic_write(path, json.dumps(keyfile).encode())
        os.chmod(path, 0o600)
        return GatewayKey(number, account.address, bytes(account.key))

    def rotate(self, store: Store, vault: LocalVault) -> tuple[GatewayKey, GatewayKey, int]:
        """Create the next key, re-wrap every stored data key for it (catalogued records and journaled writes a
        crash left pending), then delete the old key files.

        Returns (old key, new key, number of record versions re-wrapped). Safe to re-run after a crash:
        wraps already written are kept, and old files are deleted only after every wrap is committed.
        """
        files = self._files()
        if not files:
            raise AccountError(f"no gateway key in {self.directory} to rotate")
        old = self._load(*files[-1])
        new = self._create(old.number + 1)
        from .sealing import data_key_for  # noqa: PLC0415 - sealing imports this module

        count = 0
        with store.read() as conn:
            content_ids = [r.content_id for r in conn.execute(select(T.records.c.content_id))]
            # A journaled write a crash left between its anchor and its catalogue rows: recovery lists it at the
            # next start, after the old key files are gone, so its blob is re-wrapped now too. An intent whose blob
            # was never written was never anchored (the blob precedes the anchor): recovery drops it.
            content_ids += [r.content_id for r in conn.execute(select(T.intents.c.content_id))
                            if vault.has(r.content_id)]
        for content_id in dict.fromkeys(content_ids):
            data_key = data_key_for(store, vault, content_id, old, envelope=None)
            wrapped = ecies.encrypt(new.public_key, data_key)
            with store.begin() as conn:
                exists = conn.execute(select(T.key_wraps.c.content_id).where(
                    T.key_wraps.c.content_id == content_id, T.key_wraps.c.key_address == new.address)).first()
                if not exists:
                    conn.execute(insert(T.key_wraps).values(content_id=content_id, key_address=new.address,
                                                            wrapped=wrapped))
            count += 1
        for number, path in files:
            if number < new.number:
                path.unlink(missing_ok=True)
        return old, new, count


def unwrap(key: GatewayKey, wrapped: bytes) -> bytes:
    try:
        data_key = ecies.decrypt(key.private_key, wrapped)
    except (ValueError, InvalidTag) as exc:
        raise DecryptionFailed(f"the gateway key {key.address} cannot unwrap this data key ({exc})") from None
    if len(data_key) != crypto.DATA_KEY_SIZE:
        raise DecryptionFailed("unwrapped data key has the wrong length")
    return data_key


def open_with(data_key: bytes, envelope: crypto.Envelope) -> bytes:
    try:
        return AESGCM(data_key).decrypt(envelope.nonce, envelope.ciphertext, envelope.aad)
    except InvalidTag:
        raise DecryptionFailed(f"record 0x{envelope.record_id.hex()} v{envelope.version}: ciphertext or its "
                               "associated data was altered") from None
