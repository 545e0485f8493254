"""The gateway tests' helpers. The gateway process itself is the kit's launcher (`medledger.testing.gateway`),
which the demo uses too; it is re-exported here for the tests that import it from this module."""
from __future__ import annotations

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct

from medledger.accounts import LocalSigner
from medledger.testing.accounts import dev_account
from medledger.testing.gateway import KEY_PASSWORD, GatewayProcess

__all__ = ["KEY_PASSWORD", "ContractWalletSigner", "GatewayProcess", "signer"]


def signer(index: int) -> LocalSigner:
    return LocalSigner(dev_account(index))


class ContractWalletSigner:
    """Signs for an ERC-1271 wallet whose owner EOA signs the raw EIP-191 digest (MockERC1271Wallet)."""

    def __init__(self, wallet: str, owner_key: bytes) -> None:
        self.address = wallet
        self.owner_key = owner_key

    def sign_message(self, _w3: object, message: bytes) -> bytes:
        digest = _hash_eip191_message(encode_defunct(primitive=message))
        return bytes(Account.unsafe_sign_hash(digest, self.owner_key).signature)
