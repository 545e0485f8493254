"""The adversarial suite's shared world: every contract and party, and the state the attacks aim at.

`tests/adversarial/conftest.py` builds one `World` per module (`build_world`); the modules of
`tests/adversarial/` test one property each over it, the way v4-core splits its PoolManager tests
over a shared base.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from brownie import CareRegistry, ClaimEscrow, ConsentRegistry, RecordRegistry, chain, interface, web3
from brownie.network.rpc import Rpc, anvil
from eth_utils import keccak

from medledger.eip712 import (
    BreakGlassRequest,
    ConsentDomain,
    GrantRequest,
    GuardianRequest,
    RevokeRequest,
    allow_break_glass_typed_data,
    appoint_guardian_typed_data,
    close_break_glass_typed_data,
    remove_guardian_typed_data,
    sign_grant,
    sign_revoke,
    sign_typed_data,
)
from medledger.merkle import RecordLeaf
from medledger.testing import ACCOUNT_COUNT, dev_account, dev_private_key

from .errors import error_message
from .escrow import (
    CARC_MAX_ALLOWABLE,
    CARC_NOT_COVERED,
    EVIDENCE,
    USD,
    Desk,
    Record,
    control,
    grant,
    h,
    terms,
)
from .records import rid, tree_of
from .vocabulary import (
    ALL_CLASSES,
    HPAYMT,
    INSURER_ROLE,
    LABS,
    NOTES,
    PROVIDER_ROLE,
    TREAT,
    bit,
)

ADMIN_ROLE = b"\x00" * 32
DAY = 86_400
DOC = keccak(text="fhir:Consent/adversarial")
META = keccak(text="credentials:adversarial")
REASON = keccak(text="reason:adversarial")
MANIFEST = h("manifest")
KEYS = {dev_account(i).address: dev_private_key(i) for i in range(ACCOUNT_COUNT)}


def key(account) -> str:
    """The private key of a development account."""
    return KEYS[account.address]


def addresses(event) -> set[str]:
    """Every address among an event's values."""
    return {value for value in event.values() if isinstance(value, str) and web3.is_address(value)}


@dataclass(frozen=True)
class World:
    """Every contract and party of the module, and the state the matrix aims at."""

    care: Any
    consent: Any
    records: Any
    escrow: Any
    usdc: Any
    desk: Desk
    who: dict[str, Any]
    newcomer: Any
    puppet: Any
    relayer: Any
    patient2: Any
    r1: Record
    r2: Record
    batch_leaf: RecordLeaf
    batch_proof: list
    batch_id: int
    registrar_role: bytes
    pauser_role: bytes
    domain: ConsentDomain

    def __getattr__(self, name: str):
        # w.provider, w.insurer, ... read from `who`.
        try:
            return self.__dict__["who"][name]
        except KeyError:
            raise AttributeError(name) from None

    def cid(self, label: str, provider=None) -> bytes:
        return bytes(self.escrow.claimIdOf(provider or self.provider, control(label)))

    def liabilities(self) -> int:
        """Sum of every free, encumbered and owed balance of the world's escrow, and of what the insurers'
        deemed pools hold for unfunded deemed claims (interface 2)."""
        insurers = (self.insurer, self.insurer2)
        providers = (self.provider, self.provider2, self.suspended)
        return (sum(sum(self.escrow.insurerAccountOf(i)) for i in insurers)
                + sum(self.escrow.deemedPoolOf(i)[1] for i in insurers)
                + sum(self.escrow.providerAccountOf(p)[0] for p in providers))

    def assert_solvent(self) -> None:
        assert self.usdc.balanceOf(self.escrow) == self.liabilities()


def build_world(care, consent, records, escrow, usdc, accounts, admin, registrar, provider, provider2, insurer,
          arbiter, patient, patient2, guardian, stranger, relayer):
    """The standard world (built from conftest's deployments and actors) plus:
    - `suspended` (accounts[11]): a provider that anchored a record, is owed 30 USD, has an open claim,
      and was then suspended; `insurer2` (accounts[12]): an active insurer with terms and no money;
    - patient's guardian; patient consents to provider and to the suspended provider (TREAT + HPAYMT,
      every class) and to insurer (HPAYMT, every class); provider2 holds no consent of patient;
    - claims of provider: "open" (Submitted, 100), "owed" (approved in full, 50), "contestable" (40
      approved, 60 contested), "disputed" (40 approved, 60 disputed), "deemed" (Submitted, 10),
      "denied" (20 contested) - provider is owed 130;
    - records r1, r2 (NOTES, by provider, unbilled) and a 2-leaf record batch by provider.
    """
    suspended, insurer2, puppet, newcomer = accounts[11], accounts[12], accounts[13], accounts[14]
    care.register(suspended, PROVIDER_ROLE, META, {"from": registrar})
    care.register(insurer2, INSURER_ROLE, META, {"from": registrar})
    consent.appointGuardian(guardian, {"from": patient})
    desk = Desk(escrow, usdc, consent, records, care, {"provider": provider, "insurer": insurer, "patient": patient})
    desk.setup()
    grant(consent, patient, insurer, bit(HPAYMT), ALL_CLASSES)
    grant(consent, patient, suspended, bit(TREAT) | bit(HPAYMT), ALL_CLASSES)
    escrow.setTerms(terms(), {"from": insurer2})
    for payer in (insurer, insurer2):  # an allowance left in place for the deposit entries
        usdc.mint(payer, 1_000 * USD, {"from": payer})
        usdc.approve(escrow, 1_000 * USD, {"from": payer})

    r1, r2 = desk.record("w:r1"), desk.record("w:r2")
    desk.submit("open", 100 * USD)
    desk.submit("owed", 50 * USD)
    desk.adjudicate("owed", 50 * USD)
    for label in ("contestable", "disputed"):
        desk.submit(label, 100 * USD)
        desk.adjudicate(label, 40 * USD, reasons=[CARC_MAX_ALLOWABLE])
    escrow.dispute(control("disputed"), EVIDENCE, {"from": provider})
    desk.submit("deemed", 10 * USD)
    desk.submit("denied", 20 * USD)
    desk.adjudicate("denied", 0, reasons=[CARC_NOT_COVERED])
    desk.submit("s-owed", 30 * USD, provider=suspended)
    desk.adjudicate("s-owed", 30 * USD, provider=suspended)
    desk.submit("s-open", 10 * USD, provider=suspended)

    leaves = [RecordLeaf(rid(f"w:batch:{i}", patient), h(f"w:batch:{i}:v1"), patient.address, 1, NOTES,
                         provider.address)
              for i in range(2)]
    tree = tree_of(leaves)
    batch_id = records.anchorBatch(tree.root, 2, MANIFEST, {"from": provider}).return_value
    care.suspend(suspended, REASON, {"from": registrar})

    who = {"admin": admin, "registrar": registrar, "provider": provider, "provider2": provider2,
           "insurer": insurer, "insurer2": insurer2, "arbiter": arbiter, "patient": patient,
           "guardian": guardian, "stranger": stranger, "suspended": suspended}
    return World(care, consent, records, escrow, usdc, desk, who, newcomer, puppet, relayer, patient2, r1, r2,
                 leaves[0], tree.get_proof(leaves[0]), batch_id, bytes(care.REGISTRAR_ROLE()),
                 bytes(escrow.PAUSER_ROLE()), ConsentDomain(chain_id=chain.id, verifying_contract=consent.address))


# ---------------------------------------------------------------- shared by the modules of tests/adversarial


ErrorFn = Callable[[World, str, Any], str]


def unauthorized(role: Callable[[World], bytes]) -> ErrorFn:
    return lambda w, name, who: error_message(interface.IAccessControl, "AccessControlUnauthorizedAccount", who.address,
                                             role(w))


def admin_role(w: World) -> bytes:
    return ADMIN_ROLE


def bad_confirmation(w: World, name: str, who) -> str:
    return error_message(interface.IAccessControl, "AccessControlBadConfirmation")


def not_active(role: int) -> ErrorFn:
    return lambda w, name, who: error_message(ClaimEscrow, "NotActiveParty", who.address, role)


def not_provider(w: World, name: str, who) -> str:
    return error_message(ConsentRegistry, "NotActiveProvider", who.address)


def not_provider_or_insurer(w: World, name: str, who) -> str:
    return error_message(RecordRegistry, "NotProviderOrInsurer", who.address)


def not_custodian(w: World, name: str, who) -> str:
    return error_message(CareRegistry, "NotActiveCustodian", who.address)


def not_patient_or_guardian(w: World, name: str, who) -> str:
    return error_message(ConsentRegistry, "NotPatientOrGuardian", w.patient.address, who.address)


def unless(default: ErrorFn, **special: ErrorFn) -> ErrorFn:
    """`default`, except for the callers named in `special` (entitled by role, refused by state)."""
    return lambda w, name, who: special.get(name, default)(w, name, who)


def signed_grant(w: World, signer) -> tuple:
    request = GrantRequest(patient=w.patient.address, grantee=w.provider2.address, purposes=bit(TREAT),
                           data_classes=bit(LABS), valid_from=0, valid_until=0, consent_doc_hash=DOC,
                           signer=signer.address, nonce=w.consent.nonces(w.patient, w.provider2),
                           deadline=chain.time() + DAY)
    signature = sign_grant(key(signer), w.domain, request)
    return w.consent.grantBySig, grant_args(request, signature), w.relayer


def signed_revoke(w: World, signer) -> tuple:
    request = RevokeRequest(patient=w.patient.address, grantee=w.provider.address, signer=signer.address,
                            nonce=w.consent.nonces(w.patient, w.provider), deadline=chain.time() + DAY)
    signature = sign_revoke(key(signer), w.domain, request)
    return (w.consent.revokeBySig,
            (request.patient, request.grantee, request.signer, request.deadline, signature), w.relayer)


def signed_guardian_change(appoint: bool) -> Callable[[World, Any], tuple]:
    """`who` signs the patient's `AppointGuardian` (of the newcomer) or `RemoveGuardian` (of the guardian);
    only the patient's own signature is valid."""
    def target(w: World, signer) -> tuple:
        guardian = w.newcomer if appoint else w.guardian
        request = GuardianRequest(patient=w.patient.address, guardian=guardian.address,
                                  nonce=w.consent.nonces(w.patient, guardian), deadline=chain.time() + DAY)
        typed = (appoint_guardian_typed_data if appoint else remove_guardian_typed_data)(w.domain, request)
        function = w.consent.appointGuardianBySig if appoint else w.consent.removeGuardianBySig
        return function, (request.patient, request.guardian, request.deadline, sign_typed_data(key(signer), typed)), \
            w.relayer
    return target


def signed_break_glass(close: bool) -> Callable[[World, Any], tuple]:
    """`who` signs a `CloseBreakGlass` or `AllowBreakGlass` of the provider on the patient, as `signer`."""
    def target(w: World, signer) -> tuple:
        request = BreakGlassRequest(patient=w.patient.address, provider=w.provider.address, signer=signer.address,
                                    nonce=w.consent.nonces(w.patient, w.provider), deadline=chain.time() + DAY)
        typed = (close_break_glass_typed_data if close else allow_break_glass_typed_data)(w.domain, request)
        function = w.consent.closeBreakGlassBySig if close else w.consent.allowBreakGlassBySig
        return function, (request.patient, request.provider, request.signer, request.deadline,
                          sign_typed_data(key(signer), typed)), w.relayer
    return target


def grant_args(request: GrantRequest, signature: bytes) -> tuple:
    return (request.patient, request.grantee, request.purposes, request.data_classes, request.valid_from,
            request.valid_until, request.consent_doc_hash, request.signer, request.deadline, signature)


def registrar_role(w: World) -> bytes:
    return w.registrar_role


def governor_role(w: World) -> bytes:
    return bytes(w.care.GOVERNOR_ROLE())


def pauser_role(w: World) -> bytes:
    return w.pauser_role


@contextmanager
def one_block():
    """Stops mining, lets the body fill the mempool, then mines it all in one block (ordered by
    gas price, as a miner would). Ganache: miner_stop / miner_start; Anvil: automine off / evm_mine."""
    on_anvil = Rpc().backend is anvil
    web3.provider.make_request(*(("evm_setAutomine", [False]) if on_anvil else ("miner_stop", [])))
    try:
        yield
    finally:
        if on_anvil:
            web3.provider.make_request("evm_mine", [])
            web3.provider.make_request("evm_setAutomine", [True])
        else:
            web3.provider.make_request("miner_start", [])
