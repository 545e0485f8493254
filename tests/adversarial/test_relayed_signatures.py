"""EIP-712: a relayer front-running a relayed grant or revoke in the same block, and what a front-runner
cannot change (fields, order, replays, malleated signatures, removed guardians).
"""
from __future__ import annotations

import dataclasses

import brownie
import pytest
from brownie import ConsentRegistry, chain, web3
from brownie.network.transaction import TransactionReceipt
from eth_utils import keccak
from support.errors import error_message
from support.vocabulary import ALL_CLASSES, LABS, NOTES, TREAT, bit
from support.world import DAY, DOC, World, addresses, grant_args, key, not_patient_or_guardian, one_block

from medledger.eip712 import GrantRequest, RevokeRequest, sign_grant, sign_revoke

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def grant_request(w: World, signer, **overrides) -> GrantRequest:
    values = dict(patient=w.patient.address, grantee=w.provider2.address, purposes=bit(TREAT),
                  data_classes=bit(LABS), valid_from=0, valid_until=chain.time() + 30 * DAY, consent_doc_hash=DOC,
                  signer=signer.address, deadline=chain.time() + DAY)
    values.update(overrides)
    values.setdefault("nonce", w.consent.nonces(values["patient"], values["grantee"]))  # per pair
    return GrantRequest(**values)


def invalid_signature(signer) -> str:
    return error_message(ConsentRegistry, "InvalidSignature", signer if isinstance(signer, str) else signer.address)


def malleate(signature: bytes) -> bytes:
    """The high-s twin (r, n - s, v ^ 1) of a signature: the same signer under a bare ecrecover."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


def test_front_run_relayed_grant_in_the_same_block(world):
    """Relayer A broadcasts the patient's signed grant; B copies it from the mempool and outbids A.
    Both land in one block: B's goes first and does exactly what the patient signed (the actor is
    the patient, B gains nothing); A's reverts because the signature's nonce is spent."""
    w = world
    relayer_a, relayer_b = w.relayer, w.stranger
    request = grant_request(w, w.patient)
    args = grant_args(request, sign_grant(key(w.patient), w.domain, request))
    data = w.consent.grantBySig.encode_input(*args)
    price = max(web3.eth.get_block("latest").baseFeePerGas, 10**9)
    with one_block():  # both wait in the mempool; B pays 2.5 times A's gas price
        sent = [web3.eth.send_transaction({"from": relayer.address, "to": w.consent.address, "data": data,
                                           "gas": 300_000, "gasPrice": factor * price})
                for relayer, factor in ((relayer_a, 2), (relayer_b, 5))]
    tx_a, tx_b = (TransactionReceipt(txid) for txid in sent)
    assert tx_a.block_number == tx_b.block_number and tx_b.txindex < tx_a.txindex
    assert tx_b.status == 1 and tx_a.status == 0
    assert tx_a.revert_msg == invalid_signature(w.patient)
    event = tx_b.events["ConsentGranted"]
    assert (event["patient"], event["grantee"], event["actor"]) == (w.patient, w.provider2, w.patient)
    assert relayer_b.address not in addresses(event)
    stored = w.consent.consentOf(w.patient, w.provider2)
    assert stored[:4] == (request.purposes, request.data_classes, request.valid_from, request.valid_until)
    assert w.consent.nonces(w.patient, w.provider2) == request.nonce + 1


TAMPERINGS = {
    "patient": lambda w, r: {"patient": w.patient2.address},
    "grantee": lambda w, r: {"grantee": w.stranger.address},
    "purposes": lambda w, r: {"purposes": 0x3F},
    "dataClasses": lambda w, r: {"data_classes": ALL_CLASSES},
    "validFrom": lambda w, r: {"valid_from": r.valid_from + 1},
    "validUntil": lambda w, r: {"valid_until": 0},
    "consentDocHash": lambda w, r: {"consent_doc_hash": keccak(text="another consent document")},
    "signer": lambda w, r: {"signer": w.guardian.address},
    "deadline": lambda w, r: {"deadline": r.deadline + 3600},
}


@pytest.mark.parametrize("field", [*TAMPERINGS, "high-s signature"])
def test_front_runner_cannot_alter_any_field(world, field):
    """A front-runner that edits any field of the relayed call (or re-encodes the signature) is
    refused with InvalidSignature, even where the edit names parties the signer may act for (the
    patient is made guardian of patient2; the guardian may sign for the patient). The refusal burns
    no nonce, so the honest relay still lands afterwards, unchanged."""
    w = world
    w.consent.appointGuardian(w.patient, {"from": w.patient2})
    request = grant_request(w, w.patient)
    signature = sign_grant(key(w.patient), w.domain, request)
    if field == "high-s signature":
        forged, forged_signature, refused_signer = request, malleate(signature), w.patient.address
    else:
        forged = dataclasses.replace(request, **TAMPERINGS[field](w, request))
        forged_signature, refused_signer = signature, forged.signer
    with brownie.reverts(invalid_signature(refused_signer)):
        w.consent.grantBySig(*grant_args(forged, forged_signature), {"from": w.stranger})
    assert w.consent.nonces(w.patient, w.provider2) == request.nonce
    w.consent.grantBySig(*grant_args(request, signature), {"from": w.relayer})
    assert w.consent.consentOf(w.patient, w.provider2)[:4] == (bit(TREAT), bit(LABS), 0, request.valid_until)
    assert w.consent.consentOf(w.patient2, w.provider2) == (0, 0, 0, 0, 0, 0)


def test_front_run_relayed_revoke(world):
    w = world
    request = RevokeRequest(patient=w.patient.address, grantee=w.provider.address, signer=w.patient.address,
                            nonce=w.consent.nonces(w.patient, w.provider), deadline=chain.time() + DAY)
    args = (request.patient, request.grantee, request.signer, request.deadline,
            sign_revoke(key(w.patient), w.domain, request))
    tx = w.consent.revokeBySig(*args, {"from": w.stranger})
    assert tx.events["ConsentRevoked"]["actor"] == w.patient
    with brownie.reverts(invalid_signature(w.patient)):
        w.consent.revokeBySig(*args, {"from": w.relayer})
    assert not w.consent.hasConsent(w.patient, w.provider, TREAT, NOTES)


def test_relayer_cannot_reorder_a_patients_signed_requests(world):
    """The patient signs a grant (pair nonce n) then a revoke (n + 1). A relayer holding both cannot
    run the revoke first (to make the grant the final state): nonces are sequential."""
    w = world
    grant_req = grant_request(w, w.patient)
    revoke_req = RevokeRequest(patient=w.patient.address, grantee=w.provider2.address, signer=w.patient.address,
                               nonce=grant_req.nonce + 1, deadline=chain.time() + DAY)
    revoke_args = (revoke_req.patient, revoke_req.grantee, revoke_req.signer, revoke_req.deadline,
                   sign_revoke(key(w.patient), w.domain, revoke_req))
    grant_call = grant_args(grant_req, sign_grant(key(w.patient), w.domain, grant_req))
    with brownie.reverts(invalid_signature(w.patient)):
        w.consent.revokeBySig(*revoke_args, {"from": w.relayer})
    w.consent.grantBySig(*grant_call, {"from": w.relayer})
    w.consent.revokeBySig(*revoke_args, {"from": w.relayer})
    assert not w.consent.hasConsent(w.patient, w.provider2, TREAT, LABS)


def test_a_grant_signature_is_no_revoke_signature(world):
    """Same signer, same nonce, same (patient, grantee): a Grant signature replayed as a Revoke fails."""
    w = world
    request = grant_request(w, w.patient, grantee=w.provider.address)
    signature = sign_grant(key(w.patient), w.domain, request)
    with brownie.reverts(invalid_signature(w.patient)):
        w.consent.revokeBySig(w.patient, w.provider, w.patient, request.deadline, signature, {"from": w.relayer})
    assert w.consent.hasConsent(w.patient, w.provider, TREAT, NOTES)


@pytest.mark.parametrize("variant", ["high-s", "other chain id", "other verifying contract", "v as 0/1"])
def test_revoke_signature_malleability_and_replay(world, ConsentRegistry, variant):
    """The revoke path has the same defences as the grant path (tested in test_consent_eip712)."""
    w = world
    request = RevokeRequest(patient=w.patient.address, grantee=w.provider.address, signer=w.patient.address,
                            nonce=w.consent.nonces(w.patient, w.provider), deadline=chain.time() + DAY)
    signature = sign_revoke(key(w.patient), w.domain, request)
    if variant == "high-s":
        forged = malleate(signature)
    elif variant == "other chain id":
        forged = sign_revoke(key(w.patient), dataclasses.replace(w.domain, chain_id=chain.id + 1), request)
    elif variant == "other verifying contract":
        twin = ConsentRegistry.deploy(w.admin, w.care, 3600, {"from": w.admin})
        forged = sign_revoke(key(w.patient), dataclasses.replace(w.domain, verifying_contract=twin.address), request)
    else:
        forged = signature[:64] + bytes([signature[64] - 27])
    args = (request.patient, request.grantee, request.signer, request.deadline)
    with brownie.reverts(invalid_signature(w.patient)):
        w.consent.revokeBySig(*args, forged, {"from": w.relayer})
    assert w.consent.hasConsent(w.patient, w.provider, TREAT, NOTES)
    w.consent.revokeBySig(*args, signature, {"from": w.relayer})
    assert not w.consent.hasConsent(w.patient, w.provider, TREAT, NOTES)


def test_removed_guardians_signed_grant_cannot_be_relayed(world):
    """A request the guardian signed while appointed dies with the guardianship."""
    w = world
    request = grant_request(w, w.guardian)
    args = grant_args(request, sign_grant(key(w.guardian), w.domain, request))
    w.consent.removeGuardian(w.guardian, {"from": w.patient})
    with brownie.reverts(not_patient_or_guardian(w, "guardian", w.guardian)):
        w.consent.grantBySig(*args, {"from": w.relayer})
    assert not w.consent.hasConsent(w.patient, w.provider2, TREAT, LABS)
