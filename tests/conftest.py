"""Shared fixtures: named actors on the Ganache chain and the deployed MedLedger suite.

Deployments are module-scoped; every test runs inside a snapshot (fn_isolation) so tests stay
independent and fast.
"""
import pytest
from brownie import web3
from brownie.exceptions import decode_typed_error
from eth_abi import encode
from eth_utils import keccak


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    pass


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def registrar(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def provider(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def provider2(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def insurer(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def arbiter(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def patient(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def patient2(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[8]


@pytest.fixture(scope="session")
def stranger(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def relayer(accounts):
    return accounts[10]


PROVIDER, INSURER, ARBITER = 1, 2, 3


@pytest.fixture(scope="module")
def care(CareRegistry, admin, registrar, provider, provider2, insurer, arbiter):
    """A CareRegistry with one registrar, two providers, an insurer and an arbiter."""
    registry = CareRegistry.deploy(admin, {"from": admin})
    registry.grantRole(registry.REGISTRAR_ROLE(), registrar, {"from": admin})
    for account, role in [(provider, PROVIDER), (provider2, PROVIDER), (insurer, INSURER), (arbiter, ARBITER)]:
        registry.register(account, role, keccak(text=f"credentials:{account.address}"), {"from": registrar})
    return registry


def custom_error(signature: str, *args) -> str:
    """The revert string brownie reports for a custom error, e.g. custom_error("Foo(address)", a)."""
    selector = keccak(text=signature)[:4]
    types = signature[signature.index("(") + 1 : -1]
    types_list = [t for t in types.split(",") if t]
    data = selector + (encode(types_list, list(args)) if types_list else b"")
    return decode_typed_error(web3.to_hex(data))


BREAK_GLASS_MAX = 72 * 3600


@pytest.fixture(scope="module")
def consent(ConsentRegistry, care, admin):
    """A ConsentRegistry over `care`, admin-owned, with the maximum (72 h) break-glass window."""
    return ConsentRegistry.deploy(admin, care, BREAK_GLASS_MAX, {"from": admin})


@pytest.fixture(scope="session", autouse=True)
def anvil_mine_timestamp():
    """Make `chain.mine(timestamp=...)` work on Anvil (the coverage network, medledger-anvil).

    brownie 1.22.2's Anvil backend sends `evm_mine` a bare number as its params, which Anvil rejects
    with "Invalid request"; Anvil expects `[timestamp]`. Ganache uses its own backend and is unaffected.
    """
    from brownie.network.rpc import anvil

    original = anvil.mine

    def mine(timestamp=None):
        anvil._request("evm_mine", [] if timestamp is None else [timestamp])

    anvil.mine = mine
    yield
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


@pytest.fixture(scope="session", autouse=True)
def brownie_accepts_solidity_immutables():
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
    yield
    contract_module._verify_deployed_code = original


@pytest.fixture(scope="session", autouse=True)
def anvil_clock_follows_reverts():
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
    yield
    Chain._revert = original


@pytest.fixture(scope="module")
def records(RecordRegistry, care, consent, admin):
    """A RecordRegistry over `care` and `consent`."""
    return RecordRegistry.deploy(care, consent, {"from": admin})


@pytest.fixture(scope="module")
def usdc(MockStablecoin, admin):
    """A 6-decimal USDC-like mock stablecoin with EIP-2612 permit and an open mint."""
    return MockStablecoin.deploy({"from": admin})


@pytest.fixture(scope="module")
def escrow(ClaimEscrow, care, consent, records, usdc, admin):
    """A ClaimEscrow over `care`, `consent` and `records` holding `usdc`; `admin` is admin and pauser."""
    return ClaimEscrow.deploy(care, consent, records, usdc, admin, {"from": admin})


@pytest.fixture(scope="session", autouse=True)
def anvil_mined_transactions_are_not_dropped():
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
    yield
    TransactionReceipt._await_confirmation = original


def stateful_settings(max_examples: int, step_count: int) -> dict:
    """Hypothesis settings for a brownie state machine. Under `--coverage` (`make coverage`) every
    transaction and call is traced and evaluated in Python, about 100x slower, so the example count
    drops to a quarter there: coverage needs the paths reached, the property search runs in full in
    `make test`."""
    from brownie._config import CONFIG

    if CONFIG.argv.get("coverage"):
        max_examples = max(3, max_examples // 4)
    return {"max_examples": max_examples, "stateful_step_count": step_count}
