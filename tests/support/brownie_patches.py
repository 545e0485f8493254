"""Patches to brownie 1.22.2 that the test suite needs, each a context manager that undoes itself.

`tests/conftest.py` applies all of them for the session (`applied()`); each docstring says what it fixes.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from brownie import web3


@contextmanager
def anvil_mine_timestamp() -> Iterator[None]:
    """Make `chain.mine(timestamp=...)` work on Anvil (the coverage network, medledger-anvil).

    brownie 1.22.2's Anvil backend sends `evm_mine` a bare number as its params, which Anvil rejects
    with "Invalid request"; Anvil expects `[timestamp]`. Ganache uses its own backend and is unaffected.
    """
    from brownie.network.rpc import anvil

    original = anvil.mine

    def mine(timestamp=None):
        anvil._request("evm_mine", [] if timestamp is None else [timestamp])

    anvil.mine = mine
    try:
        yield
    finally:
        anvil.mine = original


def _fill_immutables(expected: bytes, actual: bytes) -> bytes:
    """`expected` runtime code with each Solidity immutable placeholder (PUSH32 of 32 zero bytes,
    which solc leaves for the constructor to fill) replaced by the value found in `actual`."""
    if len(expected) != len(actual):
        return expected
    filled = bytearray(expected)
    i = 0
    while i < len(expected):
        op = expected[i]
        if op == 0x7F and expected[i + 1 : i + 33] == bytes(32):  # PUSH32 0x00...00
            filled[i + 1 : i + 33] = actual[i + 1 : i + 33]
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)  # skip PUSH1..PUSH32 immediates
    return bytes(filled)


@contextmanager
def brownie_accepts_solidity_immutables() -> Iterator[None]:
    """Keep brownie's source maps for contracts with `immutable` variables.

    brownie 1.22.2 compares deployed runtime code byte for byte with the build artifact; solc's
    artifact holds zero placeholders where the constructor writes immutables (EIP712, registry
    addresses...), so every such contract "mismatches", brownie drops its pcMap and `--coverage`
    reports nothing for it (eth-brownie/brownie#1087). Compare again with the immutables filled in.
    """
    from brownie.network import contract as contract_module

    original = contract_module._verify_deployed_code

    def verify(address, expected_bytecode, language):
        if original(address, expected_bytecode, language):
            return True
        if language != "Solidity" or "_" in expected_bytecode:  # unlinked libraries: keep brownie's answer
            return False
        expected = bytes.fromhex(expected_bytecode.removeprefix("0x"))
        actual = bytes(web3.eth.get_code(address))
        return original(address, "0x" + _fill_immutables(expected, actual).hex(), language)

    contract_module._verify_deployed_code = verify
    try:
        yield
    finally:
        contract_module._verify_deployed_code = original


@contextmanager
def anvil_clock_follows_reverts() -> Iterator[None]:
    """Keep `chain.time()` in step with Anvil after every snapshot revert (fn_isolation, coverage calls).

    Anvil rewinds its clock to the snapshot's block time on `evm_revert` and runs on from there, while
    brownie 1.22.2 restores its own wall-clock offset, so `chain.time()` ends up ahead of the next block's
    `block.timestamp` by however long ago the snapshot was taken (seconds under `--coverage`). Resync
    brownie's clock from the latest block after each revert on Anvil; Ganache is left alone.
    """
    from brownie.network.rpc import Rpc, anvil
    from brownie.network.state import Chain

    original = Chain._revert

    def revert(self, id_):
        new_id = original(self, id_)
        if Rpc().backend is anvil:
            self._set_time_offset_from_block()
        return new_id

    Chain._revert = revert
    try:
        yield
    finally:
        Chain._revert = original


@contextmanager
def anvil_mined_transactions_are_not_dropped() -> Iterator[None]:
    """Stop brownie declaring a mined Anvil transaction "dropped" (TransactionError "Tx dropped without
    known replacement"), which happened now and then under `--coverage` on medledger-anvil.

    brownie 1.22.2 decides "dropped" when the sender's nonce has moved past the transaction but its
    receipt cannot be fetched. Anvil answers `eth_sendTransaction` before the automined block is
    stored, so for a moment the nonce has advanced while the receipt is not there yet (and a
    transaction identical to one undone by a snapshot revert has the same hash, so its receipt can
    also be briefly in flux). Anvil automines every transaction it accepts, so on Anvil a "dropped"
    verdict is re-checked: wait (up to 30 s) for the receipt and let brownie confirm again. The
    receipt's `_confirmed` event is only released once the verdict is final. Ganache mines
    synchronously and is unaffected.
    """
    import time
    from functools import cache

    from brownie.network.transaction import Status, TransactionReceipt
    from web3.exceptions import TransactionNotFound

    original = TransactionReceipt._await_confirmation

    @cache
    def on_anvil() -> bool:
        # By client, not by brownie's backend: brownie picks the Ganache backend when it attaches
        # to an Anvil node that it did not launch itself.
        return web3.client_version.lower().startswith("anvil")

    class HeldEvent:
        """Stands in for a receipt's `_confirmed` event: waiters wait on the real event, while
        brownie's own `set()` is ignored until the verdict is final."""

        def __init__(self, event):
            self.event = event

        def set(self):
            pass

        def wait(self, timeout=None):
            return self.event.wait(timeout)

        def is_set(self):
            return self.event.is_set()

    def receipt_appears(txid, seconds=30.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if web3.eth.get_transaction_receipt(txid)["blockHash"] is not None:
                    return True
            except TransactionNotFound:
                pass
            time.sleep(0.02)
        return False

    def await_confirmation(self, block_number=None, required_confs=1):
        if required_confs < 1 or not on_anvil():
            return original(self, block_number, required_confs)
        confirmed = self._confirmed
        self._confirmed = HeldEvent(confirmed)
        try:
            for _ in range(3):
                original(self, block_number, required_confs)
                if self.status != Status.Dropped or not receipt_appears(self.txid):
                    break
                self.status = Status.Pending
        finally:
            self._confirmed = confirmed
            confirmed.set()

    TransactionReceipt._await_confirmation = await_confirmation
    try:
        yield
    finally:
        TransactionReceipt._await_confirmation = original


@contextmanager
def applied() -> Iterator[None]:
    """Every patch of this module, undone in reverse order on exit."""
    with ExitStack() as stack:
        for patch in (anvil_mine_timestamp, brownie_accepts_solidity_immutables, anvil_clock_follows_reverts,
                      anvil_mined_transactions_are_not_dropped):
            stack.enter_context(patch())
        yield
