"""The gas bench: one fresh suite driven through every operation of `SPECS`, each measured from its
receipt (reports/gas.json, reports/gas-detail.json)."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from eth_utils import keccak

from medledger.chain import Chain, TxResult
from medledger.contracts import ClaimRequest, InsurerTerms
from medledger.merkle import RecordLeaf, StandardMerkleTree
from medledger.record_ids import new_record_id, record_id
from medledger.scopes import DataClass, Purpose, Role

from .floors import SPECS, GasRow, measure
from .suite import (
    ALL_CLASSES,
    DAY,
    MANUAL_SERVICE,
    SERVICE,
    USD,
    Log,
    Suite,
    WalletSigner,
    address,
    bit,
    label_hash,
    signer,
)

#: The EOA that owns the ERC-1271 wallet patient (a guardian holding a contract wallet).
WALLET_OWNER = "guardian"

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
        return label_hash(f"{label}:{self._serial}")

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
                   s.care.register(admin, address("provider"), Role.PROVIDER, label_hash("npi:provider")))
        for name, role in (("provider2", Role.PROVIDER), ("insurer", Role.INSURER), ("arbiter", Role.ARBITER)):
            s.care.register(admin, address(name), role, label_hash(f"npi:{name}"))
        s.care.assign_arbiter(admin, address("insurer"), address("arbiter"))
        self._take("registry.setGatewayEndpoint",
                   s.care.set_gateway_endpoint(signer("provider"), "https://records.clinic.example"))
        patient = signer("patient")
        self._take("consent.grant", s.consent.grant(patient, patient.address, address("provider"),
                                                    bit(Purpose.TREAT, Purpose.HPAYMT), ALL_CLASSES,
                                                    doc_hash=label_hash("consent:provider")))
        s.consent.grant(patient, patient.address, address("provider2"), bit(Purpose.TREAT), bit(DataClass.LABS),
                        doc_hash=label_hash("consent:provider2"))
        self._take("consent.revoke", s.consent.revoke(patient, patient.address, address("provider2")))
        signed = s.consent.sign_grant(signer("patient2"), address("patient2"), address("provider"),
                                      bit(Purpose.TREAT), bit(DataClass.LABS), doc_hash=label_hash("consent:sig"))
        self._take("consent.grantBySig", s.consent.relay(signer("relayer"), signed))
        wallet, _ = s.chain.deploy(signer(WALLET_OWNER), "MockERC1271Wallet", address(WALLET_OWNER), False)
        as_wallet = WalletSigner(wallet.address, signer(WALLET_OWNER))
        signed = s.consent.sign_grant(as_wallet, wallet.address, address("provider"), bit(Purpose.TREAT),
                                      bit(DataClass.LABS), doc_hash=label_hash("consent:wallet"))
        self._take("consent.grantBySig.erc1271", s.consent.relay(signer("relayer"), signed))
        s.consent.grant(patient, patient.address, address("insurer"), bit(Purpose.HPAYMT),
                        bit(DataClass.BILLING, DataClass.LABS),
                        doc_hash=label_hash("consent:insurer"))

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
        s.escrow.set_coverage(insurer, address("patient"), label_hash("policy"), 0, 2**40 - 1,
                              auto_data_classes=ALL_CLASSES)
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
        self._take("claim.dispute", s.escrow.dispute(provider, control, label_hash("evidence")))
        self._take("claim.resolve", s.escrow.resolve(arbiter, provider.address, control, 20 * USD,
                                                     label_hash("decision")))

        control, _ = self._claim("deemed", 100 * USD)
        with time_travel(s.chain, 30 * DAY + 60):
            self._take("claim.finalizeDeemed", s.escrow.finalize_deemed(signer("relayer"), provider.address,
                                                                        control))

        s.escrow.set_terms(insurer, InsurerTerms(30 * DAY, 14 * DAY, auto_max_amount=1_000 * USD, auto_service_min=0,
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
