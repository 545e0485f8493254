"""The gateway's per-read AuditEvent bytes: `EventForms` (a cached template per reader, record and decision,
with each read's own instant) must give exactly the RFC 8785 canonical form of `audit_event`, whose keccak is
the entry's event hash and part of its on-chain Merkle leaf. No chain needed."""
from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from medledger import fhir
from medledger.gateway.auditlog import _RECORDED_SLOT, EventForms, audit_event
from medledger.gateway.consent import AccessState, decide
from medledger.scopes import DataClass, Purpose, Role

PATIENT = to_checksum_address("0x" + "a1" * 20)
READER = to_checksum_address("0x" + "b2" * 20)
REGISTRY = to_checksum_address("0x" + "c3" * 20)
RECORD = "0x" + PATIENT[2:].lower() + "d4" * 12
CLASSES = frozenset({DataClass.LABS, DataClass.CONDITIONS})


def _decision(purpose: Purpose, **state: object):  # noqa: ANN202 - a consent.Decision
    return decide(AccessState(PATIENT, READER, 120, **state), purpose, CLASSES, now=1_800_000_000)


DECISIONS = {
    "consent": _decision(Purpose.TREAT, role=Role.PROVIDER, active=True, purposes=1 << Purpose.TREAT,
                         data_classes=(1 << 32) - 1, granted_at=1_700_000_000),
    "break-glass": _decision(Purpose.ETREAT, role=Role.PROVIDER, active=True, break_glass_until=1_900_000_000),
    "guardian": _decision(Purpose.TREAT, guardian=True),
}


def _fields(decision, recorded: float, origin: str = "https://records.clinic.example",  # noqa: ANN001
            interaction: str = "read") -> dict:
    return dict(chain_id=31337, origin=origin, consent_registry=REGISTRY, reader=READER, patient=PATIENT,
                record_id=RECORD, version=2, decision=decision, released=["conditions", "labs"], recorded=recorded,
                consent_origin=(57, "0x" + "ef" * 32) if decision.basis == "consent" else None,
                interaction=interaction)


@pytest.mark.parametrize("basis", sorted(DECISIONS))
def test_each_read_gets_the_canonical_bytes_of_its_own_event(basis):
    forms = EventForms()
    # the first read builds the template; later reads of the same decision reuse it with their own instant
    for recorded in (1_800_000_000.0, 1_800_000_000.123, 1_800_000_061.5, 1_800_000_061.9994, 0.0):
        fields = _fields(DECISIONS[basis], recorded)
        assert forms(**fields) == fhir.canonicalize(audit_event(**fields))
    assert len(forms._templates) == 1


def test_a_different_decision_block_or_interaction_is_a_different_template():
    forms = EventForms()
    consent = DECISIONS["consent"]
    later = decide(AccessState(**{**consent.state.__dict__, "block": 121}), Purpose.TREAT, CLASSES,
                   now=1_800_000_000)
    for fields in (_fields(consent, 1.5), _fields(later, 1.5), _fields(consent, 1.5, interaction="vread"),
                   _fields(DECISIONS["guardian"], 1.5)):
        assert forms(**fields) == fhir.canonicalize(audit_event(**fields))
    assert len(forms._templates) == 4


def test_an_origin_holding_the_placeholder_is_canonicalised_in_full():
    forms = EventForms()
    fields = _fields(DECISIONS["guardian"], 1_800_000_000.25, origin=f"https://x.example/{_RECORDED_SLOT}")
    assert forms(**fields) == fhir.canonicalize(audit_event(**fields))
    assert forms._templates == {}  # never cached: the placeholder would not be unique


def test_the_cache_is_bounded():
    forms = EventForms(size=3)
    for version in range(10):
        fields = {**_fields(DECISIONS["guardian"], 2.0), "version": version}
        assert forms(**fields) == fhir.canonicalize(audit_event(**fields))
        assert len(forms._templates) <= 3
