"""The suite deployed on a node of the indexer tests' own, and a workload that emits every kind of suite event."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medledger.accounts import load_signer
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import CareRegistry, ClaimEscrow, ClaimRequest, ConsentRegistry, InsurerTerms, RecordRegistry
from medledger.deploy import deploy_suite
from medledger.deployments import SUITE, require
from medledger.record_ids import record_id
from medledger.scopes import Role

DAY = 86_400


@dataclass
class Suite:
    """The deployed suite on a node, with the SDK wrappers and the actors' signers."""

    chain: Chain
    addresses: dict[str, str]
    start_block: int
    care: CareRegistry
    consent: ConsentRegistry
    records: RecordRegistry
    escrow: ClaimEscrow
    actors: dict[str, Any] = field(default_factory=dict)
    hashes: dict[bytes, bytes] = field(default_factory=dict)  # record id -> its latest content hash
    counter: int = 0

    def signer(self, name: str) -> Any:
        return self.actors[name]

    def address(self, name: str) -> str:
        return self.actors[name].address

    def next_suffix(self) -> bytes:
        self.counter += 1
        return self.counter.to_bytes(12, "big")


ACTOR_INDEX = {"admin": 0, "provider": 2, "provider2": 3, "insurer": 4, "arbiter": 5, "patient": 6, "patient2": 7}


def deploy(url: str, home: Path) -> Suite:
    """Deploys the suite on `url` with the SDK (deployments file under `home`) and registers the parties."""
    settings = load_settings(rpc=url, deployments_path=home / "deployments.json", keystore_dir=home / "keystore")
    chain = Chain(settings)
    actors = {name: load_signer(f"node:{i}", home, home, w3=chain.w3) for name, i in ACTOR_INDEX.items()}
    deploy_suite(chain, actors["admin"])
    deployment = require(settings.deployments_path, chain.chain_id)
    addresses = {name: deployment.address(name) for name in SUITE}
    start = min(c.block for c in deployment.contracts.values())
    suite = Suite(chain, addresses, start, CareRegistry(chain, addresses["CareRegistry"]),
                  ConsentRegistry(chain, addresses["ConsentRegistry"]),
                  RecordRegistry(chain, addresses["RecordRegistry"]), ClaimEscrow(chain, addresses["ClaimEscrow"]),
                  actors)
    admin = actors["admin"]
    for name, role in (("provider", Role.PROVIDER), ("provider2", Role.PROVIDER), ("insurer", Role.INSURER),
                       ("arbiter", Role.ARBITER)):
        suite.care.register(admin, suite.address(name), role, os.urandom(32))
    suite.care.assign_arbiter(admin, suite.address("insurer"), suite.address("arbiter"))
    return suite


ALL_PURPOSES, ALL_CLASSES = 0b111111, 0b11111111111
TREAT_PAY = 0b101


def grant(suite: Suite, patient: str, grantee: str, purposes: int = TREAT_PAY, classes: int = ALL_CLASSES) -> None:
    suite.consent.grant(suite.signer(patient), suite.address(patient), suite.address(grantee), purposes, classes)


def anchor(suite: Suite, patient: str, provider: str = "provider", data_class: int = 1) -> bytes:
    rid = record_id(suite.address(patient), suite.next_suffix())
    suite.hashes[rid] = os.urandom(32)
    suite.records.anchor(suite.signer(provider), rid, suite.address(patient), suite.hashes[rid], data_class)
    return rid


def fund_insurer(suite: Suite, amount: int = 10**12) -> None:
    insurer = suite.signer("insurer")
    token = suite.escrow.token
    suite.chain.transact(insurer, token.contract.functions.mint(insurer.address, amount))
    suite.escrow.deposit(insurer, amount)
    suite.escrow.set_terms(insurer, InsurerTerms(14 * DAY, 30 * DAY))


def enrol(suite: Suite, patient: str) -> None:
    now = suite.chain.w3.eth.get_block("latest")["timestamp"]
    insurer = suite.signer("insurer")
    suite.escrow.set_coverage(insurer, suite.address(patient), os.urandom(32), now - 10, now + 365 * DAY)


def submit(suite: Suite, patient: str, rid: bytes, billed: int, provider: str = "provider") -> bytes:
    control = os.urandom(32)
    request = ClaimRequest(control, suite.address(patient), suite.address("insurer"), billed, 100, os.urandom(32),
                           ((rid, suite.hashes[rid]),))
    suite.escrow.submit(suite.signer(provider), request)
    return control


def workload(suite: Suite) -> dict[str, Any]:
    """Consents, records (anchor, amend, access logs), escrow funding and claims in every state."""
    grant(suite, "patient", "provider")
    grant(suite, "patient2", "provider")
    grant(suite, "patient", "insurer", purposes=0b100, classes=ALL_CLASSES)
    grant(suite, "patient2", "insurer", purposes=0b100, classes=ALL_CLASSES)
    rids = [anchor(suite, "patient") for _ in range(3)] + [anchor(suite, "patient2")]
    amended = os.urandom(32)
    suite.records.amend(suite.signer("provider"), rids[0], suite.address("patient"), suite.hashes[rids[0]], amended)
    suite.hashes[rids[0]] = amended
    suite.records.log_access(suite.signer("provider"), suite.address("patient"), rids[1], 0)
    fund_insurer(suite)
    enrol(suite, "patient")
    enrol(suite, "patient2")
    open_claim = submit(suite, "patient", rids[1], 500)
    partial = submit(suite, "patient", rids[2], 900)
    full = submit(suite, "patient2", rids[3], 300)
    insurer = suite.signer("insurer")
    suite.escrow.adjudicate(insurer, suite.address("provider"), partial, 600, reason_codes=(45,))
    suite.escrow.adjudicate(insurer, suite.address("provider"), full, 300)
    suite.escrow.dispute(suite.signer("provider"), partial, os.urandom(32))
    suite.consent.revoke(suite.signer("patient2"), suite.address("patient2"), suite.address("provider"))
    return {"records": rids, "open": open_claim, "disputed": partial, "settled": full}
