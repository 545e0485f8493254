"""The benchmarks behind `make bench` (issue 7): gas from receipts and throughput, with the floors
and targets they are judged against. `scripts/bench.py` is the brownie entry point; the off-chain
pipeline part is also runnable alone as `scripts/bench_offchain.py`.

Gas (reports/gas.json, reports/gas-detail.json): every figure is `gasUsed` from the receipt of a
real transaction sent through the SDK wrappers to a freshly deployed suite (`deploy_suite`), never
an estimate. Each operation also gets a *floor*: 21,000 + the calldata of the actual transaction
input (16 gas per non-zero byte, 4 per zero byte) + the state access the operation cannot avoid
whatever the implementation (EIP-2929/3529 prices: a new slot 22,100, a cold slot update 5,000, a
cold slot read 2,100, a cold call to another contract 2,600, ecrecover 3,000, a cleared slot's
4,800 refund capped at a fifth of the gas). Events, memory, ABI decoding and the implementation's
own book-keeping (locks, compact tables) are the distance between the floor and the measurement.

Throughput (reports/bench.json): one anchor per transaction through the SDK, records per second
anchored by Merkle batches from ready hashes, the off-chain pipeline alone, and `medledger record
put-batch` end to end as a subprocess; the two anchoring figures also on an Anvil started here.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak

from . import crypto, fhir, synthetic
from .accounts import LocalSigner
from .chain import Chain, TxResult
from .config import PROJECT_ROOT, Settings, load_settings
from .contracts import (
    CareRegistry,
    ClaimEscrow,
    ClaimRequest,
    ConsentRegistry,
    InsurerTerms,
    RecordRegistry,
    Token,
)
from .deploy import deploy_suite
from .merkle import RecordLeaf, StandardMerkleTree
from .pipeline import RecordJob, prepare_batch
from .record_ids import new_record_id, record_id
from .scopes import DataClass, Purpose, Role
from .vault import LocalVault

Log = Callable[[str], None]

MNEMONIC = "test test test test test test test test test test test junk"
#: Bench actor -> index of the development mnemonic's account.
ACTORS: dict[str, int] = {"admin": 0, "provider": 2, "provider2": 3, "insurer": 4, "arbiter": 5, "patient": 6,
                          "patient2": 7, "wallet_owner": 8, "relayer": 10}
ALL_CLASSES = 0x7FF
USD = 10**6
DAY = 86_400
SERVICE = 100          # a service code inside the auto-approval range
MANUAL_SERVICE = 2_000  # outside it

# ------------------------------------------------------------------ EVM prices (Shanghai)
G_TX = 21_000
G_NEW_SLOT = 22_100      # SSTORE 0 -> x on a cold slot (20,000 + 2,100 cold access)
G_SLOT_UPDATE = 5_000    # SSTORE x -> y (x != 0) on a cold slot (2,900 + 2,100)
G_COLD_READ = 2_100      # SLOAD of a cold slot
G_COLD_ACCOUNT = 2_600   # first call to another contract in the transaction
G_ECRECOVER = 3_000      # the precompile (precompiles are always warm)
R_CLEAR = 4_800          # refund for x -> 0 (EIP-3529)
R_SET_AND_CLEAR = 19_900  # refund for 0 -> x -> 0 within one transaction


def calldata_gas(data: bytes) -> int:
    """Intrinsic calldata cost: 16 gas per non-zero byte, 4 per zero byte."""
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


@dataclass(frozen=True)
class Cost:
    """One unavoidable state access of an operation: its kind, what it touches, its price."""

    kind: str  # "new slot" | "slot update" | "slot cleared" | "cold read" | "cold call" | "precompile"
    what: str
    gas: int


def new_slot(what: str) -> Cost:
    return Cost("new slot", what, G_NEW_SLOT)


def update(what: str) -> Cost:
    return Cost("slot update", what, G_SLOT_UPDATE)


def cleared(what: str) -> Cost:
    return Cost("slot cleared", what, G_SLOT_UPDATE)


def read(what: str) -> Cost:
    return Cost("cold read", what, G_COLD_READ)


def call(contract: str) -> Cost:
    return Cost("cold call", contract, G_COLD_ACCOUNT)


ECRECOVER = Cost("precompile", "ecrecover", G_ECRECOVER)


@dataclass(frozen=True)
class Floor:
    """The state access an operation cannot avoid, plus the refunds it earns."""

    costs: tuple[Cost, ...]
    refund: int = 0

    def total(self, calldata: int) -> int:
        """21,000 + calldata + the costs, less the refund (capped at a fifth of the gas, EIP-3529)."""
        before = G_TX + calldata + sum(c.gas for c in self.costs)
        return before - min(self.refund, before // 5)

    def describe(self) -> str:
        """Every cost with its price (for reports/gas-detail.json)."""
        text = "; ".join(f"{c.kind}: {c.what} {c.gas:,}" for c in self.costs)
        return text + (f"; refund -{self.refund:,}" if self.refund else "")

    def summary(self) -> str:
        """The costs grouped by kind, e.g. `2 cold reads 4,200 (consent, party)`, for the table."""
        groups: dict[str, list[Cost]] = {}
        for c in self.costs:
            groups.setdefault(c.kind, []).append(c)
        parts = []
        for kind, costs in groups.items():
            label = kind if len(costs) == 1 else f"{len(costs)} {_PLURAL[kind]}"
            parts.append(f"{label} {sum(c.gas for c in costs):,} ({', '.join(c.what for c in costs)})")
        return "; ".join(parts) + (f"; refund -{self.refund:,}" if self.refund else "")


_PLURAL = {"new slot": "new slots", "slot update": "slot updates", "slot cleared": "slots cleared",
           "cold read": "cold reads", "cold call": "cold calls", "precompile": "precompiles"}


@dataclass(frozen=True)
class OpSpec:
    """What one measured operation is, its target (None: no target) and its floor."""

    case: str
    target: int | None
    floor: Floor


_ANCHOR_FLOOR = Floor((new_slot("record head"), read("pair consent"), read("author party"),
                       call("ConsentRegistry"), call("CareRegistry")))
_SUBMIT_COSTS = (new_slot("claim"), new_slot("record+service key"), read("provider party"), read("enrolment"),
                 read("insurer consent"), read("insurer party"), read("record version"), read("provider consent"),
                 read("insurer terms"), call("CareRegistry"), call("ConsentRegistry"), call("RecordRegistry"))
_PAY_COSTS = (update("insurer account"), update("provider account"))

#: Every measured operation, in the order `GasBench.run` measures them. Slots named "token: ..." are
#: the stablecoin's (balances, allowance, permit nonce); the others the called contract's own.
SPECS: dict[str, OpSpec] = {
    "registry.addProvider": OpSpec(
        "registrar registers the suite's first party (a provider)", None,
        Floor((new_slot("party record"), new_slot("party id -> account"), new_slot("party count, first party"),
               read("registrar role")))),
    "consent.grant": OpSpec(
        "patient's first grant to this grantee", 55_000,
        Floor((new_slot("pair consent"),))),
    "consent.revoke": OpSpec(
        "patient revokes a live grant (the cleared slot earns a 4,800 refund)", 32_000,
        Floor((cleared("pair consent"),), refund=R_CLEAR)),
    "consent.grantBySig": OpSpec(
        "EOA patient's first signed grant, relayed by a third party", 85_000,
        Floor((new_slot("pair consent"), new_slot("signer nonce"), ECRECOVER))),
    "consent.grantBySig.erc1271": OpSpec(
        "ERC-1271 wallet patient's first signed grant, relayed", None,
        Floor((new_slot("pair consent"), new_slot("signer nonce"), call("wallet"), ECRECOVER))),
    "record.anchor": OpSpec("anchor by an enrolled provider with TREAT consent", 60_000, _ANCHOR_FLOOR),
    "record.amend": OpSpec(
        "the author amends its record (v1 -> v2)", None,
        Floor((new_slot("superseded version"), update("record head"), read("author party"), call("CareRegistry")))),
    "record.logAccess": OpSpec(
        "consented provider logs a TREAT access", None,
        Floor((read("record head"), read("pair consent"), read("accessor party"), call("ConsentRegistry"),
               call("CareRegistry")))),
    "record.anchorBatch1000": OpSpec(
        "one Merkle batch of 1,000 records", 70_000,
        Floor((new_slot("batch"), read("submitter party"), call("CareRegistry")))),
    "escrow.depositWithPermit": OpSpec(
        "insurer's first deposit, EIP-2612 permit in the same tx (the SDK's path)", None,
        # ClaimEscrow v2 (issue 13): a deposit reads the insurer's deemed pool, which it fills first.
        Floor((new_slot("insurer account"), new_slot("token: escrow balance"), new_slot("token: permit nonce"),
               Cost("new slot", "token: allowance 0->x->0", G_NEW_SLOT + 100), update("token: insurer balance"),
               read("insurer party"), read("deemed pool"), call("token"), call("CareRegistry"), ECRECOVER),
              refund=R_SET_AND_CLEAR)),
    "escrow.deposit": OpSpec(
        "insurer's later deposit after approve()", None,
        Floor((update("insurer account"), update("token: insurer balance"), update("token: escrow balance"),
               cleared("token: allowance"), read("insurer party"), read("deemed pool"), call("token"),
               call("CareRegistry")), refund=R_CLEAR)),
    # Issue 13: a submission also checks the insurer's payment consent for the cited record's class.
    "claim.submit": OpSpec("one-record claim, established provider, manual adjudication", 125_000,
                           Floor(_SUBMIT_COSTS)),
    "claim.approve": OpSpec(
        "insurer approves in full, credited to the provider's owed balance", 60_000,
        Floor((update("claim"), *_PAY_COSTS, read("coverage"), read("insurer party"), call("CareRegistry")))),
    "claim.withdraw": OpSpec(
        "provider withdraws part of what it is owed", 60_000,
        Floor((update("provider account"), update("token: escrow balance"), update("token: provider balance"),
               read("provider party"), call("CareRegistry"), call("token")))),
    "claim.approvePartial": OpSpec(
        "insurer approves part, the rest encumbered for dispute", None,
        Floor((update("claim"), *_PAY_COSTS, read("coverage"), read("insurer party"), read("insurer terms"),
               call("CareRegistry")))),
    # ClaimEscrow v2: a dispute moves no money and is open to a suspended provider, so no registry read.
    "claim.dispute": OpSpec(
        "provider disputes the contested amount", None,
        Floor((update("claim"),))),
    "claim.resolve": OpSpec(
        "arbiter awards part of the contested amount", None,
        Floor((update("claim"), *_PAY_COSTS, read("arbiter party"), read("coverage"), call("CareRegistry")))),
    "claim.finalizeDeemed": OpSpec(
        "anyone finalizes an unadjudicated claim after the prompt-pay window", None,
        Floor((update("claim"), *_PAY_COSTS, read("coverage"), read("provider party"), call("CareRegistry")))),
    # ClaimEscrow v2: auto-approval counts against the (provider, coverage) velocity cap, one slot that
    # the pair's first automatic approval creates (one-off) and later ones update (measured here).
    "claim.submitAutoPaid": OpSpec(
        "claim auto-approved at submission and pushed to the provider (opted in), not the pair's first", 165_000,
        Floor((*_SUBMIT_COSTS[:2], *_PAY_COSTS, update("auto velocity"), update("token: escrow balance"),
               update("token: provider balance"), *_SUBMIT_COSTS[2:], call("token")))),
}


@dataclass(frozen=True)
class GasRow:
    """One measured operation: the receipt's gasUsed next to its target and floor."""

    op: str
    gas: int
    tx_hash: str
    calldata_bytes: int
    calldata_gas: int
    spec: OpSpec

    @property
    def target(self) -> int | None:
        return self.spec.target

    @property
    def passed(self) -> bool | None:
        return None if self.spec.target is None else self.gas <= self.spec.target

    @property
    def floor(self) -> int:
        return self.spec.floor.total(self.calldata_gas)

    @property
    def distance(self) -> int:
        return self.gas - self.floor

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "case": self.spec.case, "gas": self.gas, "target": self.target, "pass": self.passed,
                "floor": self.floor, "distance": self.distance, "calldata_bytes": self.calldata_bytes,
                "calldata_gas": self.calldata_gas, "floor_basis": self.spec.floor.describe(), "tx": self.tx_hash}


def measure(chain: Chain, op: str, result: TxResult) -> GasRow:
    """The gas row of `op` from a mined transaction: gasUsed from its receipt, calldata from its input."""
    receipt = chain.w3.eth.get_transaction_receipt(result.tx_hash)
    data = bytes(chain.w3.eth.get_transaction(result.tx_hash)["input"])
    return GasRow(op, int(receipt["gasUsed"]), result.tx_hash, len(data), calldata_gas(data), SPECS[op])


# ------------------------------------------------------------------ parties and the suite


@cache
def dev_signer(index: int) -> LocalSigner:
    """Account `index` of the development mnemonic (the accounts Ganache and Anvil fund)."""
    Account.enable_unaudited_hdwallet_features()
    return LocalSigner(Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"))


def dev_private_key(index: int) -> str:
    return "0x" + dev_signer(index).private_key.hex()


def dev_public_key(index: int) -> bytes:
    """The compressed secp256k1 public key of development account `index`."""
    return crypto.compress_public_key(crypto.public_key_of(dev_signer(index).private_key))


@dataclass(frozen=True)
class WalletSigner:
    """An ERC-1271 contract wallet as an EIP-712 signer: its owner EOA signs for it."""

    address: str
    owner: LocalSigner

    def send_transaction(self, w3: Any, tx: dict) -> bytes:
        raise NotImplementedError("a contract wallet does not send transactions here")

    def sign_typed_data(self, w3: Any, typed_data: dict) -> bytes:
        return self.owner.sign_typed_data(w3, typed_data)

    def sign_message(self, w3: Any, message: bytes) -> bytes:
        return self.owner.sign_message(w3, message)


@dataclass
class Suite:
    """A deployed MedLedger suite on one chain, its typed wrappers and the bench's parties."""

    chain: Chain
    care: CareRegistry
    consent: ConsentRegistry
    records: RecordRegistry
    escrow: ClaimEscrow
    token: Token
    deployments: Path

    @classmethod
    def deploy(cls, rpc_url: str, deployments: Path, log: Log = lambda _: None) -> Suite:
        """Deploys the suite with `deploy_suite` (deployer = development account 0)."""
        settings = load_settings(rpc=rpc_url, deployments_path=deployments)
        chain = Chain(settings)
        steps = {s.name: s.address for s in deploy_suite(chain, signer("admin"), log=log)}
        return cls(chain, CareRegistry(chain, steps["CareRegistry"]), ConsentRegistry(chain, steps["ConsentRegistry"]),
                   RecordRegistry(chain, steps["RecordRegistry"]), ClaimEscrow(chain, steps["ClaimEscrow"]),
                   Token(chain, steps["Stablecoin"]), deployments)

    @property
    def settings(self) -> Settings:
        return self.chain.settings


def signer(name: str) -> LocalSigner:
    return dev_signer(ACTORS[name])


def address(name: str) -> str:
    return signer(name).address


def bit(*indexes: int) -> int:
    return sum(1 << i for i in set(indexes))


def _h(label: str) -> bytes:
    return keccak(text=f"medledger-bench:{label}")


def prepare_anchoring(suite: Suite) -> None:
    """Makes `provider` an active provider with TREAT consent of `patient` (idempotent, not measured)."""
    if not suite.care.is_active(address("provider"), Role.PROVIDER):
        suite.care.register(signer("admin"), address("provider"), Role.PROVIDER, _h("npi:provider"))
    if not suite.consent.has_consent(address("patient"), address("provider"), Purpose.TREAT, DataClass.LABS):
        suite.consent.grant(signer("patient"), address("patient"), address("provider"),
                            bit(Purpose.TREAT, Purpose.HPAYMT), ALL_CLASSES, doc_hash=_h("consent:provider"))


# ------------------------------------------------------------------ gas


class GasBench:
    """Drives one fresh suite through every operation of `SPECS`, measuring each from its receipt."""

    def __init__(self, suite: Suite, log: Log = lambda _: None) -> None:
        self.s, self.log = suite, log
        self.rows: list[GasRow] = []
        self._serial = 0

    def _take(self, op: str, result: TxResult) -> TxResult:
        row = measure(self.s.chain, op, result)
        self.rows.append(row)
        self.log(f"  {op:28} {row.gas:>9,} gas")
        return result

    def _next(self, label: str) -> bytes:
        self._serial += 1
        return _h(f"{label}:{self._serial}")

    def _record_id(self, label: str) -> bytes:
        """A deterministic record id of the bench patient (patient address + 12 bytes)."""
        return record_id(address("patient"), self._next(f"record:{label}")[:12])

    def _anchor(self, label: str) -> tuple[bytes, bytes]:
        rid, digest = self._record_id(label), self._next(f"content:{label}")
        self.s.records.anchor(signer("provider"), rid, address("patient"), digest, DataClass.LABS)
        return rid, digest

    def _claim(self, label: str, billed: int, service: int = MANUAL_SERVICE) -> tuple[bytes, TxResult]:
        rid, digest = self._anchor(label)
        control = self._next(f"control:{label}")
        request = ClaimRequest(control, address("patient"), address("insurer"), billed, service,
                               self._next(f"claim:{label}"), ((rid, digest),))
        return control, self.s.escrow.submit(signer("provider"), request)

    def run(self) -> list[GasRow]:
        self._registry_and_consent()
        self._records()
        self._escrow()
        missing = set(SPECS) - {r.op for r in self.rows}
        if missing:
            raise AssertionError(f"operations not measured: {sorted(missing)}")
        return self.rows

    def _registry_and_consent(self) -> None:
        s, admin = self.s, signer("admin")
        self._take("registry.addProvider",
                   s.care.register(admin, address("provider"), Role.PROVIDER, _h("npi:provider")))
        for name, role in (("provider2", Role.PROVIDER), ("insurer", Role.INSURER), ("arbiter", Role.ARBITER)):
            s.care.register(admin, address(name), role, _h(f"npi:{name}"))
        patient = signer("patient")
        self._take("consent.grant", s.consent.grant(patient, patient.address, address("provider"),
                                                    bit(Purpose.TREAT, Purpose.HPAYMT), ALL_CLASSES,
                                                    doc_hash=_h("consent:provider")))
        s.consent.grant(patient, patient.address, address("provider2"), bit(Purpose.TREAT), bit(DataClass.LABS),
                        doc_hash=_h("consent:provider2"))
        self._take("consent.revoke", s.consent.revoke(patient, patient.address, address("provider2")))
        signed = s.consent.sign_grant(signer("patient2"), address("patient2"), address("provider"),
                                      bit(Purpose.TREAT), bit(DataClass.LABS), doc_hash=_h("consent:sig"))
        self._take("consent.grantBySig", s.consent.relay(signer("relayer"), signed))
        wallet, _ = s.chain.deploy(signer("wallet_owner"), "MockERC1271Wallet", address("wallet_owner"), False)
        as_wallet = WalletSigner(wallet.address, signer("wallet_owner"))
        signed = s.consent.sign_grant(as_wallet, wallet.address, address("provider"), bit(Purpose.TREAT),
                                      bit(DataClass.LABS), doc_hash=_h("consent:wallet"))
        self._take("consent.grantBySig.erc1271", s.consent.relay(signer("relayer"), signed))
        s.consent.grant(patient, patient.address, address("insurer"), bit(Purpose.HPAYMT),
                        bit(DataClass.BILLING, DataClass.LABS),
                        doc_hash=_h("consent:insurer"))

    def _records(self) -> None:
        s, provider, patient = self.s, signer("provider"), address("patient")
        rid, v1 = self._record_id("r"), self._next("content:r1")
        self._take("record.anchor", s.records.anchor(provider, rid, patient, v1, DataClass.LABS))
        self._take("record.amend", s.records.amend(provider, rid, patient, v1, self._next("content:r2")))
        self._take("record.logAccess", s.records.log_access(provider, patient, rid, Purpose.TREAT))
        leaves = random_leaves(1_000, patient, provider.address)
        tree = StandardMerkleTree.of_records(leaves)
        self._take("record.anchorBatch1000", s.records.anchor_batch(provider, tree.root, len(leaves),
                                                                    keccak(tree.root)))

    def _escrow(self) -> None:
        s = self.s
        insurer, provider, arbiter = signer("insurer"), signer("provider"), signer("arbiter")
        manual = InsurerTerms(30 * DAY, 14 * DAY)
        s.escrow.set_terms(insurer, manual)
        s.escrow.set_coverage(insurer, address("patient"), _h("policy"), 0, 2**40 - 1)
        s.chain.transact(insurer, s.token.fn.mint(insurer.address, 10_000_000 * USD))
        self._take("escrow.depositWithPermit", s.escrow.deposit(insurer, 1_000_000 * USD))
        s.token.approve(insurer, s.escrow.address, 1_000_000 * USD)
        self._take("escrow.deposit", s.chain.transact(insurer, s.escrow.fn.deposit(1_000_000 * USD)))

        # Warm-up: the provider's first credit and first payout create its storage (one-off costs).
        warm, _ = self._claim("warm", 10 * USD)
        s.escrow.adjudicate(insurer, provider.address, warm, 10 * USD)
        s.escrow.withdraw(provider, 5 * USD)

        control, result = self._claim("submit", 100 * USD)
        self._take("claim.submit", result)
        self._take("claim.approve", s.escrow.adjudicate(insurer, provider.address, control, 100 * USD))
        self._take("claim.withdraw", s.escrow.withdraw(provider, 50 * USD))

        control, _ = self._claim("dispute", 100 * USD)
        self._take("claim.approvePartial", s.escrow.adjudicate(insurer, provider.address, control, 60 * USD,
                                                               reason_codes=(45,)))
        self._take("claim.dispute", s.escrow.dispute(provider, control, _h("evidence")))
        self._take("claim.resolve", s.escrow.resolve(arbiter, provider.address, control, 20 * USD, _h("decision")))

        control, _ = self._claim("deemed", 100 * USD)
        with time_travel(s.chain, 30 * DAY + 60):
            self._take("claim.finalizeDeemed", s.escrow.finalize_deemed(signer("relayer"), provider.address,
                                                                        control))

        s.escrow.set_terms(insurer, InsurerTerms(30 * DAY, 14 * DAY, auto_max_amount=1_000 * USD,
                                                 auto_data_classes=ALL_CLASSES, auto_service_min=0,
                                                 auto_service_max=1_000, auto_max_per_period=20,
                                                 auto_period=30 * DAY))
        s.escrow.set_push_payments(provider, True)
        self._claim("auto-warm", 100 * USD, service=SERVICE)  # creates the pair's velocity slot (one-off)
        _, result = self._claim("auto", 100 * USD, service=SERVICE)
        if not s.escrow.events(result, "PaymentPushed"):
            raise AssertionError("the auto-approved claim was not paid in its submission")
        self._take("claim.submitAutoPaid", result)


@contextlib.contextmanager
def time_travel(chain: Chain, seconds: int) -> Iterator[None]:
    """Moves a development chain `seconds` ahead inside a snapshot, reverted on exit."""
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    try:
        chain.w3.provider.make_request("evm_increaseTime", [seconds])
        chain.w3.provider.make_request("evm_mine", [])
        yield
    finally:
        chain.w3.provider.make_request("evm_revert", [snapshot])


def random_leaves(count: int, patient: str, author: str) -> list[RecordLeaf]:
    return [RecordLeaf(new_record_id(patient), os.urandom(32), patient, 1, int(DataClass.LABS), author)
            for _ in range(count)]


# ------------------------------------------------------------------ anchoring throughput


@dataclass(frozen=True)
class Rate:
    """`count` items in `seconds` of wall time."""

    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def single_anchor_rate(suite: Suite, count: int = 100) -> Rate:
    """One `anchor` per transaction through the SDK, each waiting for its receipt."""
    provider, patient = signer("provider"), address("patient")
    jobs = [(new_record_id(patient), os.urandom(32)) for _ in range(count)]
    start = time.perf_counter()
    for rid, digest in jobs:
        suite.records.anchor(provider, rid, patient, digest, DataClass.LABS)
    return Rate(count, time.perf_counter() - start)


@dataclass(frozen=True)
class BatchRate:
    """Records anchored by `batches` Merkle batches of `size`: leaves + tree + anchorBatch tx each."""

    batches: int
    size: int
    seconds: float
    tree_seconds: float
    gas: tuple[int, ...]

    @property
    def rate(self) -> Rate:
        return Rate(self.batches * self.size, self.seconds)


def batch_anchor_rate(suite: Suite, batches: int = 5, size: int = 10_000) -> BatchRate:
    """Records/s anchored by Merkle batches from ready (record id, content hash) pairs: building the
    leaves and the tree, and the anchorBatch transaction up to its receipt, are timed."""
    provider, patient = signer("provider"), address("patient")
    ready = [[(new_record_id(patient), os.urandom(32)) for _ in range(size)] for _ in range(batches)]
    gas, tree_seconds = [], 0.0
    start = time.perf_counter()
    for hashes in ready:
        t0 = time.perf_counter()
        tree = StandardMerkleTree.of_records(RecordLeaf(rid, digest, patient, 1, int(DataClass.LABS),
                                                        provider.address) for rid, digest in hashes)
        tree_seconds += time.perf_counter() - t0
        gas.append(suite.records.anchor_batch(provider, tree.root, size, keccak(tree.root)).gas_used)
    return BatchRate(batches, size, time.perf_counter() - start, tree_seconds, tuple(gas))


# ------------------------------------------------------------------ off-chain pipeline


def _cpu_seconds(pids: Sequence[int]) -> float:
    import psutil  # a dependency of eth-brownie

    total = time.process_time()
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _random_party() -> tuple[str, bytes]:
    public = crypto.public_key_of(os.urandom(32))
    return crypto.address_of_public_key(public), crypto.compress_public_key(public)


@dataclass(frozen=True)
class PipelineRun:
    """The off-chain pipeline (canonicalize, seal for 2 recipients, vault write, hash), validation off."""

    records: int
    workers: int
    durable: bool
    input: str
    canonical_bytes: tuple[int, int, int]  # min, max, mean
    seconds: tuple[float, ...]
    cpu_per_record: tuple[float, ...]
    directory: str

    @property
    def rates(self) -> list[float]:
        return [self.records / s for s in self.seconds]

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    @property
    def idle_ceiling(self) -> float:
        """What the CPU time per record allows on this many idle cores."""
        return (os.cpu_count() or 1) / min(self.cpu_per_record)


def pipeline_throughput(records: int = 10_000, *, workers: int = 2, distinct: int = 500, durable: bool = True,
                        dicts: bool = False, repeat: int = 3, parent: Path | None = None,
                        log: Log = lambda _: None) -> PipelineRun:
    """Times `prepare_batch` on synthetic FHIR R5 Bundles (5-20 KB canonical), handed over as JSON text
    as exported by an EHR (or as parsed dicts), sealed for the patient and one grantee, into a fresh
    vault under `parent` per repeat (fsync group commits unless `durable=False`). Generating the data
    is not timed. Vaults are deleted at the end (deleting between repeats would slow the next one's
    file creation on ext4)."""
    (patient, patient_pub), (grantee, grantee_pub) = _random_party(), _random_party()
    recipients = {patient: patient_pub, grantee: grantee_pub}
    bundles = [synthetic.patient_bundle(i, patient) for i in range(distinct)]
    texts = [json.dumps(b, indent=2).encode() for b in bundles]  # as exported: pretty, keys unordered
    sizes = [len(fhir.canonicalize(b)) for b in bundles]
    docs: Sequence[Any] = bundles if dicts else texts
    jobs = [RecordJob(doc=docs[i % len(docs)], patient=patient, recipients=recipients, data_class=4)
            for i in range(records)]
    log(f"{records} records; canonical size {min(sizes)}-{max(sizes)} B, mean {statistics.mean(sizes):.0f} B; "
        f"input {'dicts' if dicts else 'JSON text'}; 2 recipients; fsync {'on' if durable else 'off'}; "
        f"workers {workers}; cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.2f}")
    seconds, cpu_per_record, roots = [], [], []
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(abs, range(workers * 4)))  # fork and warm the workers outside the timing
            pids = list(pool._processes)  # noqa: SLF001 - benchmark bookkeeping only
            for _ in range(repeat):
                roots.append(Path(tempfile.mkdtemp(prefix="medledger-bench-vault-", dir=parent)))
                vault = LocalVault(roots[-1], durable=durable)
                cpu0, start = _cpu_seconds(pids), time.perf_counter()
                results = prepare_batch(jobs, vault, workers=workers, executor=pool)
                elapsed, cpu = time.perf_counter() - start, _cpu_seconds(pids) - cpu0
                if not len({r.content_hash for r in results}) == records == len(list(vault)):
                    raise AssertionError("the pipeline lost or merged records")
                seconds.append(elapsed)
                cpu_per_record.append(cpu / records)
                log(f"  {elapsed:.2f} s wall -> {records / elapsed:,.0f} records/s; "
                    f"{cpu / records * 1e3:.3f} ms CPU/record (parent + workers, index included)")
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)
    run = PipelineRun(records, workers, durable, "dicts" if dicts else "JSON text",
                      (min(sizes), max(sizes), round(statistics.mean(sizes))), tuple(seconds),
                      tuple(cpu_per_record), str(parent or tempfile.gettempdir()))
    log(f"pipeline: best {run.best:,.0f} records/s wall, median {run.median:,.0f}; "
        f"CPU-bound ceiling on {os.cpu_count()} idle cores {run.idle_ceiling:,.0f} records/s")
    return run


def merkle_build_times(sizes: Sequence[int] = (1_000, 10_000), repeat: int = 7) -> dict[int, tuple[float, float]]:
    """Best and median seconds to build a record Merkle tree of each size from ready leaves."""
    patient, author = _random_party()[0], _random_party()[0]
    leaves = [RecordLeaf(new_record_id(patient), os.urandom(32), patient, 1 + i % 3, i % 11, author)
              for i in range(max(sizes))]
    out = {}
    for n in sizes:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            StandardMerkleTree.of_records(leaves[:n])
            times.append(time.perf_counter() - start)
        out[n] = (min(times), statistics.median(times))
    return out


# ------------------------------------------------------------------ end to end (the CLI)


@dataclass(frozen=True)
class EndToEnd:
    """`medledger record put-batch` on a folder of synthetic bundles, from process start to anchored."""

    records: int
    seconds: float
    cli_seconds: float  # what put-batch itself reports (after process start and imports)
    gas_used: int
    batch_id: str
    bundle_bytes: int

    @property
    def rate(self) -> Rate:
        return Rate(self.records, self.seconds)


def medledger_exe() -> str:
    exe = Path(sys.executable).parent / "medledger"
    return str(exe) if exe.exists() else (shutil.which("medledger") or "medledger")


def end_to_end(suite: Suite, workdir: Path, count: int = 1_000, workers: int = 2) -> EndToEnd:
    """Runs the real CLI entry point as a subprocess against the suite's chain (validation on)."""
    prepare_anchoring(suite)
    patient = address("patient")
    if not suite.care.encryption_key(patient):
        suite.care.publish_encryption_key(signer("patient"), dev_public_key(ACTORS["patient"]))
    docs = workdir / "bundles"
    docs.mkdir(parents=True)
    size = 0
    for i in range(count):
        text = json.dumps(synthetic.patient_bundle(10_000 + i, patient), indent=2)
        (docs / f"bundle-{i:05d}.json").write_text(text)
        size += len(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    env.update({"MEDLEDGER_HOME": str(workdir / "home"), "MEDLEDGER_VAULT": str(workdir / "vault"),
                "MEDLEDGER_KEYSTORE_DIR": str(workdir / "home" / "keystore"),
                "MEDLEDGER_DEPLOYMENTS": str(suite.deployments),
                "MEDLEDGER_BENCH_PROVIDER_KEY": dev_private_key(ACTORS["provider"])})
    cmd = [medledger_exe(), "--rpc", suite.settings.rpc_url, "--account", "env:MEDLEDGER_BENCH_PROVIDER_KEY",
           "--json", "record", "put-batch", str(docs), "--patient", patient, "--class", "labs",
           "--workers", str(workers)]
    start = time.perf_counter()
    # Its own session, so that on a timeout the CLI and its sealing workers are stopped together.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=PROJECT_ROOT, start_new_session=True, preexec_fn=_die_with_parent)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        _stop_group(proc)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"medledger record put-batch failed ({proc.returncode}): {err.strip()}")
    done = json.loads(out)
    batch_id = int(done["batch_id"], 16)
    if done["count"] != count or suite.records.batch_of(batch_id).count != count:
        raise AssertionError(f"put-batch anchored {done['count']} records, expected {count}")
    return EndToEnd(count, seconds, float(done["seconds"]), int(done["gas_used"]), done["batch_id"], size // count)


# ------------------------------------------------------------------ Anvil


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the bench process dies (Linux prctl PR_SET_PDEATHSIG)."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(1, signal.SIGTERM)


@contextlib.contextmanager
def anvil_node(port: int | None = None) -> Iterator[str]:
    """An Anvil of our own (Shanghai, the development mnemonic, chain id 31337); stopped on exit."""
    port = port or _free_port()
    if _port_open(port):
        raise RuntimeError(f"port {port} is busy: cannot start Anvil there")
    exe = shutil.which("anvil") or str(PROJECT_ROOT / "node_modules" / ".bin" / "anvil")
    cmd = [exe, "--hardfork", "shanghai", "--mnemonic", MNEMONIC, "--accounts", "20", "--balance", "1000000",
           "--port", str(port), "--chain-id", "31337", "--silent"]
    # Its own session: the npm wrapper spawns the real binary, and the whole group is stopped together.
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_die_with_parent)
    try:
        deadline = time.monotonic() + 60
        while not _port_open(port):
            if proc.poll() is not None:
                raise RuntimeError(f"anvil exited with {proc.returncode} before listening on port {port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"anvil did not listen on port {port} within 60 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the wrapper is gone; its binary must not linger
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit, so that the `finally` blocks stop Anvil and delete the work dirs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------ the whole bench


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of each measurement (the defaults keep `make bench` around two minutes on 2 cores)."""

    single_anchors: int = 200
    batches: int = 5
    batch_size: int = 10_000
    pipeline_records: int = 10_000
    pipeline_repeat: int = 3
    e2e_records: int = 2_000
    workers: int = 2
    anvil: bool = True
    anvil_port: int | None = None
    work_parent: Path | None = None

    @classmethod
    def from_env(cls) -> BenchConfig:
        """Overrides from MEDLEDGER_BENCH_* variables (e.g. MEDLEDGER_BENCH_ANVIL_PORT=8650)."""
        ints = {f: f"MEDLEDGER_BENCH_{f.upper()}" for f in ("single_anchors", "batches", "batch_size",
                                                              "pipeline_records", "pipeline_repeat", "e2e_records",
                                                              "workers", "anvil_port")}
        kw: dict[str, Any] = {f: int(os.environ[v]) for f, v in ints.items() if os.environ.get(v)}
        if os.environ.get("MEDLEDGER_BENCH_ANVIL") == "0":
            kw["anvil"] = False
        if os.environ.get("MEDLEDGER_BENCH_DIR"):
            kw["work_parent"] = Path(os.environ["MEDLEDGER_BENCH_DIR"])
        return cls(**kw)


#: Throughput targets: a figure (records or tx per second), or a multiple of another figure.
PIPELINE_TARGET = 2_000
BATCH_RATIO_TARGET = 500


def default_work_parent() -> Path:
    """/var/tmp when usable (on this box /tmp and the project disk were slow at creating many small
    files: a vault writes one per record), else the system temp directory."""
    candidate = Path("/var/tmp")
    if candidate.is_dir() and os.access(candidate, os.W_OK):
        return candidate
    return Path(tempfile.gettempdir())


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    return {"cores": os.cpu_count(), "cpu": model, "memory_bytes": memory, "platform": platform.platform(),
            "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()]}


@dataclass
class BenchReport:
    gas: list[GasRow]
    figures: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def gas_json(self) -> dict[str, int]:
        return {row.op: row.gas for row in self.gas}

    def checks(self) -> list[tuple[str, float | None, str, bool | None]]:
        """(figure, value, target text, pass) for the throughput table."""
        f = self.figures
        out: list[tuple[str, float | None, str, bool | None]] = []
        for prefix in ("", "anvil."):
            single, batch = f.get(prefix + "single_anchor_tx_per_s"), f.get(prefix + "batch_anchor_records_per_s")
            out.append((prefix + "single_anchor_tx_per_s", single, "-", None))
            if batch is not None and single:
                need = BATCH_RATIO_TARGET * single
                out.append((prefix + "batch_anchor_records_per_s", batch,
                            f">= {BATCH_RATIO_TARGET} x single = {need:,.0f}", batch >= need))
                out.append((prefix + "batch_vs_single_ratio", f.get(prefix + "batch_vs_single_ratio"),
                            f">= {BATCH_RATIO_TARGET}", batch >= need))
            if prefix == "":
                pipe = f.get("pipeline_records_per_s")
                out.append(("pipeline_records_per_s", pipe, f">= {PIPELINE_TARGET:,}",
                            None if pipe is None else pipe >= PIPELINE_TARGET))
                out.append(("end_to_end_records_per_s", f.get("end_to_end_records_per_s"), "-", None))
        return [row for row in out if row[1] is not None]

    def bench_json(self) -> dict[str, Any]:
        return {**{k: round(v, 2) if isinstance(v, float) else v for k, v in self.figures.items()},
                "targets": {"batch_vs_single_ratio": BATCH_RATIO_TARGET, "pipeline_records_per_s": PIPELINE_TARGET},
                "pass": {name: ok for name, _, _, ok in self.checks() if ok is not None},
                "details": self.details, "machine": self.machine}


def run_bench(rpc_url: str, reports_dir: Path, config: BenchConfig = BenchConfig(), log: Log = print) -> BenchReport:
    """Everything `make bench` measures; writes reports/gas.json, gas-detail.json and bench.json."""
    started = time.perf_counter()
    machine = machine_info()
    parent = config.work_parent or default_work_parent()
    work = Path(tempfile.mkdtemp(prefix="medledger-bench-", dir=parent))
    details: dict[str, Any] = {"work_dir": str(work)}
    figures: dict[str, Any] = {}
    try:
        log(f"== deploying the suite on {rpc_url} (work dir {work})")
        suite = Suite.deploy(rpc_url, work / "deployments.json")
        machine["node"] = suite.chain.w3.client_version
        log("== gas, from receipts")
        rows = GasBench(suite, log).run()
        report = BenchReport(rows)
        reports_dir.mkdir(parents=True, exist_ok=True)
        _write_json(reports_dir / "gas.json", report.gas_json())
        _write_json(reports_dir / "gas-detail.json", [r.as_dict() for r in rows])

        log(f"== anchoring throughput on {machine['node']}")
        _anchoring(suite, config, figures, details, "", log)
        if config.anvil:
            with anvil_node(config.anvil_port) as url:
                anvil = Suite.deploy(url, work / "deployments-anvil.json")
                machine["anvil"] = anvil.chain.w3.client_version
                log(f"== anchoring throughput on {machine['anvil']}")
                prepare_anchoring(anvil)
                _anchoring(anvil, config, figures, details, "anvil.", log)

        log(f"== off-chain pipeline ({config.pipeline_records:,} records, vault under {parent})")
        run = pipeline_throughput(config.pipeline_records, workers=config.workers, repeat=config.pipeline_repeat,
                                  parent=parent, log=lambda m: log("  " + m))
        figures["pipeline_records_per_s"] = run.best
        details["pipeline"] = {**asdict(run), "rates": [round(r, 1) for r in run.rates], "reported": "best",
                               "median_records_per_s": round(run.median, 1),
                               "idle_ceiling_records_per_s": round(run.idle_ceiling, 1),
                               "validation": False, "vault_dir": str(parent)}

        log(f"== end to end: medledger record put-batch, {config.e2e_records:,} bundles, validation on")
        e2e = end_to_end(suite, work / "e2e", config.e2e_records, config.workers)
        figures["end_to_end_records_per_s"] = e2e.rate.per_s
        details["end_to_end"] = {**asdict(e2e), "validation": True, "workers": config.workers,
                                 "vault_dir": str(work / "e2e" / "vault"),
                                 "includes": "process start, imports, validation, sealing, vault, manifest, tx"}
        log(f"  {e2e.records:,} records in {e2e.seconds:.2f} s, {e2e.cli_seconds:.2f} s of them inside put-batch "
            f"(anchorBatch gas {e2e.gas_used:,})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    details["duration_s"] = round(time.perf_counter() - started, 1)
    report.figures, report.details, report.machine = figures, details, machine
    _write_json(reports_dir / "bench.json", report.bench_json())
    return report


def _anchoring(suite: Suite, config: BenchConfig, figures: dict[str, Any], details: dict[str, Any], prefix: str,
               log: Log) -> None:
    single = single_anchor_rate(suite, config.single_anchors)
    log(f"  single: {single.count} anchors in {single.seconds:.2f} s")
    batch = batch_anchor_rate(suite, config.batches, config.batch_size)
    log(f"  batch: {batch.batches} x {batch.size:,} records in {batch.seconds:.2f} s "
        f"(trees {batch.tree_seconds:.2f} s)")
    figures[prefix + "single_anchor_tx_per_s"] = single.per_s
    figures[prefix + "batch_anchor_records_per_s"] = batch.rate.per_s
    figures[prefix + "batch_vs_single_ratio"] = batch.rate.per_s / single.per_s
    details[prefix + "single_anchor"] = {"anchors": single.count, "seconds": round(single.seconds, 3),
                                         "path": "RecordRegistry.anchor via Chain.transact: estimate, sign, send, "
                                                 "wait for the receipt; sequential"}
    details[prefix + "batch_anchor"] = {"batches": batch.batches, "size": batch.size,
                                        "seconds": round(batch.seconds, 3),
                                        "tree_seconds": round(batch.tree_seconds, 3), "gas": list(batch.gas),
                                        "timed": "leaves + StandardMerkleTree + anchorBatch tx to its receipt"}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------ tables


def gas_table(rows: Sequence[GasRow]) -> Any:
    from rich.table import Table

    table = Table(title="Gas per operation (gasUsed from receipts, Ganache). floor = 21,000 + calldata + the "
                  "state access no implementation can avoid", title_justify="left")
    for name, justify in (("operation", "left"), ("gas used", "right"), ("target", "right"), ("pass", "center"),
                          ("floor", "right"), ("over floor", "right"), ("calldata", "right"),
                          ("unavoidable state access in the floor", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(row.op, f"{row.gas:,}", f"{row.target:,}" if row.target else "-", _verdict(row.passed),
                      f"{row.floor:,}", f"+{row.distance:,} ({row.distance / row.floor:.0%})",
                      f"{row.calldata_gas:,}", row.spec.floor.summary())
        if row.op == "record.anchorBatch1000":
            per = row.gas / 1_000
            table.add_row("  per record", f"{per:,.1f}", "100", _verdict(per <= 100), f"{row.floor / 1_000:,.1f}",
                          f"+{row.distance / 1_000:,.1f}", "", "the batch's floor over its 1,000 records")
    return table


def throughput_table(report: BenchReport) -> Any:
    from rich.table import Table

    table = Table(title="Throughput", title_justify="left")
    for name, justify in (("figure", "left"), ("value", "right"), ("target", "left"), ("pass", "center")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, value, target, ok in report.checks():
        unit = "x" if name.endswith("ratio") else ("tx/s" if "tx_per_s" in name else "records/s")
        table.add_row(name, f"{value:,.1f} {unit}", target, _verdict(ok))
    return table


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("[green]PASS[/green]" if ok else "[red]FAIL[/red]")


def main(rpc_url: str, reports_dir: Path | None = None, config: BenchConfig | None = None) -> BenchReport:
    """Runs the bench and prints its tables (what `scripts/bench.py` calls)."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    with _sigterm_as_exit():
        report = run_bench(rpc_url, reports_dir or PROJECT_ROOT / "reports", config or BenchConfig.from_env(),
                           log=lambda m: console.print(m, highlight=False, markup=False))
    console.print()
    console.print(gas_table(report.gas))
    console.print(throughput_table(report))
    m = report.machine
    console.print(f"machine: {m['cores']} cores ({m['cpu']}), load average {m['load_average']} at start, "
                  f"{m['load_average_end']} at end; nodes: {m.get('node')}, {m.get('anvil', 'no anvil')}; "
                  f"pipeline vault under {report.details.get('pipeline', {}).get('vault_dir')}; "
                  f"{report.details['duration_s']} s in all", highlight=False)
    console.print("wrote reports/gas.json, reports/gas-detail.json, reports/bench.json", highlight=False)
    return report
