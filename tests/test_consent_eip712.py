"""ConsentRegistry gasless grant/revoke: EIP-712 signatures built with medledger.eip712 (eth-account)."""

import dataclasses
import functools

import brownie
import pytest
from brownie import ConsentRegistry, chain
from eth_abi import encode
from eth_keys import keys
from eth_utils import keccak, to_checksum_address
from support.errors import error_message, reverts_with
from support.vocabulary import BILLING, HPAYMT, LABS, TREAT

from medledger.eip712 import (
    GRANT_FIELDS,
    REVOKE_FIELDS,
    ConsentDomain,
    GrantRequest,
    RevokeRequest,
    grant_typed_data,
    sign_grant,
    sign_revoke,
    sign_typed_data,
    typed_data_digest,
)
from medledger.errors import MedLedgerError, TypedDataError
from medledger.testing import ACCOUNT_COUNT, dev_account

DOC = keccak(text="fhir:Consent/signed|v1")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DAY = 24 * 3600


@functools.cache
def _dev_keys() -> dict[str, bytes]:
    """Private keys of the development accounts (brownie's unlocked RPC accounts do not expose them)."""
    derived = (dev_account(i) for i in range(ACCOUNT_COUNT))
    return {account.address: bytes(account.key) for account in derived}


def key(account) -> bytes:
    return _dev_keys()[account.address]


@pytest.fixture(scope="module")
def domain(consent):
    return ConsentDomain(chain_id=chain.id, verifying_contract=consent.address)


def grant_request(consent, patient, grantee, signer, **overrides) -> GrantRequest:
    values = dict(
        patient=patient.address if hasattr(patient, "address") else patient,
        grantee=grantee.address,
        purposes=1 << TREAT,
        data_classes=1 << LABS,
        valid_from=0,
        valid_until=chain.time() + 30 * DAY,
        consent_doc_hash=DOC,
        signer=signer if isinstance(signer, str) else signer.address,
        deadline=chain.time() + DAY,
    )
    values["nonce"] = consent.nonces(values["patient"], values["grantee"])  # per (patient, grantee) pair
    values.update(overrides)
    return GrantRequest(**values)


def revoke_request(consent, patient, grantee, signer, **overrides) -> RevokeRequest:
    values = dict(
        patient=patient if isinstance(patient, str) else patient.address,
        grantee=grantee.address,
        signer=signer if isinstance(signer, str) else signer.address,
        deadline=chain.time() + DAY,
    )
    values["nonce"] = consent.nonces(values["patient"], values["grantee"])  # per (patient, grantee) pair
    values.update(overrides)
    return RevokeRequest(**values)


def grant_terms(request: GrantRequest) -> tuple:
    """What a grant request says, in the order grantBySig and the Grant struct take it (up to the signer)."""
    return (
        request.patient,
        request.grantee,
        request.purposes,
        request.data_classes,
        request.valid_from,
        request.valid_until,
        request.consent_doc_hash,
        request.signer,
    )


def submit_grant(consent, request: GrantRequest, signature: bytes, relayer):
    return consent.grantBySig(*grant_terms(request), request.deadline, signature, {"from": relayer})


def submit_revoke(consent, request: RevokeRequest, signature: bytes, relayer):
    return consent.revokeBySig(
        request.patient, request.grantee, request.signer, request.deadline, signature, {"from": relayer}
    )


def invalid_signature(signer) -> str:
    return error_message(ConsentRegistry, "InvalidSignature", signer if isinstance(signer, str) else signer.address)


# -------------------------------------------------------------------- domain


def test_domain_matches_python(consent, domain):
    fields, name, version, chain_id, verifying_contract, salt, extensions = consent.eip712Domain()
    assert (fields, name, version) == ("0x0f", "MedLedger ConsentRegistry", "2")
    assert (chain_id, verifying_contract, salt, extensions) == (chain.id, consent.address, "0x" + "00" * 32, ())
    domain_type = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    expected = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [domain_type, keccak(text=name), keccak(text=version), chain.id, consent.address],
        )
    )
    assert consent.DOMAIN_SEPARATOR() == "0x" + expected.hex()


def test_digest_matches_contract_encoding(consent, domain, patient, provider):
    """Python's digest is keccak(0x1901 || DOMAIN_SEPARATOR || structHash) with the contract's type hash."""
    request = grant_request(consent, patient, provider, patient)
    struct_hash = keccak(
        encode(
            [
                "bytes32",
                "address",
                "address",
                "uint8",
                "uint16",
                "uint40",
                "uint40",
                "bytes32",
                "address",
                "uint256",
                "uint256",
            ],
            [
                bytes(consent.GRANT_TYPEHASH()),
                *grant_terms(request),
                request.nonce,
                request.deadline,
            ],
        )
    )
    expected = keccak(b"\x19\x01" + bytes(consent.DOMAIN_SEPARATOR()) + struct_hash)
    assert typed_data_digest(grant_typed_data(domain, request)) == expected


def type_string(name: str, fields: list[dict[str, str]]) -> str:
    return f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"


def test_type_hashes_match_python(consent):
    assert consent.GRANT_TYPEHASH() == "0x" + keccak(text=type_string("Grant", GRANT_FIELDS)).hex()
    assert consent.REVOKE_TYPEHASH() == "0x" + keccak(text=type_string("Revoke", REVOKE_FIELDS)).hex()


# ------------------------------------------------------------------- success


def test_grant_by_sig_relayed(consent, domain, patient, provider, relayer):
    request = grant_request(consent, patient, provider, patient)
    signature = sign_grant(key(patient), domain, request)
    tx = submit_grant(consent, request, signature, relayer)
    assert tx.gas_used <= 85_000, tx.gas_used
    assert tx.events["ConsentGranted"] == {
        "patient": patient,
        "grantee": provider,
        "actor": patient,
        "purposes": request.purposes,
        "dataClasses": request.data_classes,
        "validFrom": 0,
        "validUntil": request.valid_until,
        "consentDocHash": "0x" + DOC.hex(),
    }
    assert consent.nonces(patient, provider) == 1
    assert consent.hasConsent(patient, provider, TREAT, LABS)
    assert not consent.hasConsent(patient, provider, TREAT, BILLING)


def test_guardian_signs_for_patient(consent, domain, patient, guardian, provider, relayer):
    consent.appointGuardian(guardian, {"from": patient})
    request = grant_request(consent, patient, provider, guardian)
    tx = submit_grant(consent, request, sign_grant(key(guardian), domain, request), relayer)
    assert tx.gas_used <= 85_000, tx.gas_used
    assert tx.events["ConsentGranted"]["actor"] == guardian
    assert consent.nonces(patient, provider) == 1
    assert consent.hasConsent(patient, provider, TREAT, LABS)
    revoke = revoke_request(consent, patient, provider, guardian)
    tx = submit_revoke(consent, revoke, sign_revoke(key(guardian), domain, revoke), relayer)
    assert tx.events["ConsentRevoked"] == {"patient": patient, "grantee": provider, "actor": guardian}
    assert not consent.hasConsent(patient, provider, TREAT, LABS)


def test_revoke_by_sig(consent, domain, patient, provider, relayer):
    consent.grant(patient, provider, 1, 1 << LABS, 0, 0, DOC, {"from": patient})
    request = revoke_request(consent, patient, provider, patient)
    tx = submit_revoke(consent, request, sign_revoke(key(patient), domain, request), relayer)
    assert tx.events["ConsentRevoked"] == {"patient": patient, "grantee": provider, "actor": patient}
    assert not consent.hasConsent(patient, provider, TREAT, LABS)
    assert consent.nonces(patient, provider) == 2  # the direct grant, then the signed revoke


def test_deadline_second_itself_is_accepted(consent, domain, patient, provider, relayer):
    deadline = chain.time() + 100
    request = grant_request(consent, patient, provider, patient, deadline=deadline)
    signature = sign_grant(key(patient), domain, request)
    chain.mine(timestamp=deadline - 1)  # the relayed tx lands on `deadline - 1` or `deadline`
    tx = submit_grant(consent, request, signature, relayer)
    assert deadline - 1 <= tx.timestamp <= deadline
    assert consent.hasConsent(patient, provider, TREAT, LABS)


# ---------------------------------------------------------------- rejections


def test_wrong_signer_rejected(consent, domain, patient, provider, stranger, relayer):
    request = grant_request(consent, patient, provider, patient)
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, request, sign_grant(key(stranger), domain, request), relayer)
    revoke = revoke_request(consent, patient, provider, patient)
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    with brownie.reverts(invalid_signature(patient)):
        submit_revoke(consent, revoke, sign_revoke(key(stranger), domain, revoke), relayer)
    assert consent.nonces(patient, provider) == 1  # only the direct grant moved it


def test_signer_must_be_patient_or_guardian(consent, domain, patient, provider, stranger, relayer):
    request = grant_request(consent, patient, provider, stranger)
    signature = sign_grant(key(stranger), domain, request)
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, stranger.address):
        submit_grant(consent, request, signature, relayer)
    revoke = revoke_request(consent, patient, provider, stranger)
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, stranger.address):
        submit_revoke(consent, revoke, sign_revoke(key(stranger), domain, revoke), relayer)


def test_expired_deadline_rejected(consent, domain, patient, provider, relayer):
    deadline = chain.time() + 60
    request = grant_request(consent, patient, provider, patient, deadline=deadline)
    signature = sign_grant(key(patient), domain, request)
    chain.mine(timestamp=deadline + 1)
    with reverts_with(ConsentRegistry, "SignatureExpired", deadline):
        submit_grant(consent, request, signature, relayer)
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    revoke = revoke_request(consent, patient, provider, patient, deadline=chain.time() - 10)
    with reverts_with(ConsentRegistry, "SignatureExpired", revoke.deadline):
        submit_revoke(consent, revoke, sign_revoke(key(patient), domain, revoke), relayer)


def test_replay_rejected(consent, domain, patient, provider, relayer, stranger):
    request = grant_request(consent, patient, provider, patient)
    signature = sign_grant(key(patient), domain, request)
    submit_grant(consent, request, signature, relayer)
    consent.revoke(patient, provider, {"from": patient})
    for sender in (relayer, stranger):
        with brownie.reverts(invalid_signature(patient)):
            submit_grant(consent, request, signature, sender)
    assert not consent.hasConsent(patient, provider, TREAT, LABS)


def test_revoke_replay_rejected(consent, domain, patient, provider, relayer):
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    revoke = revoke_request(consent, patient, provider, patient)
    signature = sign_revoke(key(patient), domain, revoke)
    submit_revoke(consent, revoke, signature, relayer)
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    with brownie.reverts(invalid_signature(patient)):
        submit_revoke(consent, revoke, signature, relayer)
    assert consent.hasConsent(patient, provider, TREAT, 0)


def test_nonce_is_shared_by_grant_and_revoke(consent, domain, patient, provider, relayer):
    """A revoke signed for nonce 0 dies once a grant consumed nonce 0 (order is what the signer chose)."""
    grant = grant_request(consent, patient, provider, patient)
    revoke = revoke_request(consent, patient, provider, patient)
    assert grant.nonce == revoke.nonce == 0
    revoke_sig = sign_revoke(key(patient), domain, revoke)
    submit_grant(consent, grant, sign_grant(key(patient), domain, grant), relayer)
    with brownie.reverts(invalid_signature(patient)):
        submit_revoke(consent, revoke, revoke_sig, relayer)


def test_failed_call_does_not_burn_nonce(consent, domain, patient, provider, relayer):
    revoke = revoke_request(consent, patient, provider, patient)
    signature = sign_revoke(key(patient), domain, revoke)
    with reverts_with(ConsentRegistry, "ConsentNotFound", patient.address, provider.address):
        submit_revoke(consent, revoke, signature, relayer)
    assert consent.nonces(patient, provider) == 0
    # The nonce is intact: a grant signed for it still goes through (a direct grant would void both).
    grant = grant_request(consent, patient, provider, patient)
    assert grant.nonce == 0
    submit_grant(consent, grant, sign_grant(key(patient), domain, grant), relayer)
    assert consent.nonces(patient, provider) == 1


@pytest.mark.parametrize(
    "field,value",
    [
        ("grantee", "provider2"),
        ("purposes", (1 << TREAT) | (1 << HPAYMT)),
        ("data_classes", (1 << LABS) | (1 << BILLING)),
        ("valid_from", 1),
        ("valid_until", 0),
        ("consent_doc_hash", keccak(text="another document")),
        ("deadline", "later"),
    ],
)
def test_tampered_field_rejected(consent, domain, patient, provider, provider2, relayer, field, value):
    request = grant_request(consent, patient, provider, patient)
    signature = sign_grant(key(patient), domain, request)
    if value == "provider2":
        value = provider2.address
    if value == "later":
        value = request.deadline + 1
    tampered = dataclasses.replace(request, **{field: value})
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, tampered, signature, relayer)


def test_tampered_patient_or_signer_rejected(consent, domain, patient, patient2, guardian, provider, relayer):
    consent.appointGuardian(guardian, {"from": patient})
    consent.appointGuardian(guardian, {"from": patient2})
    signed_by_guardian = grant_request(consent, patient, provider, guardian)
    signature = sign_grant(key(guardian), domain, signed_by_guardian)
    other_patient = dataclasses.replace(signed_by_guardian, patient=patient2.address)
    with brownie.reverts(invalid_signature(guardian)):
        submit_grant(consent, other_patient, signature, relayer)
    claimed_by_patient = dataclasses.replace(signed_by_guardian, signer=patient.address)
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, claimed_by_patient, signature, relayer)
    revoke = revoke_request(consent, patient, provider, guardian)
    consent.grant(patient2, provider, 1, 1, 0, 0, DOC, {"from": patient2})
    with brownie.reverts(invalid_signature(guardian)):
        submit_revoke(
            consent,
            dataclasses.replace(revoke, patient=patient2.address),
            sign_revoke(key(guardian), domain, revoke),
            relayer,
        )


def test_other_chain_id_rejected(consent, domain, patient, provider, relayer):
    request = grant_request(consent, patient, provider, patient)
    foreign = dataclasses.replace(domain, chain_id=1)
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, request, sign_grant(key(patient), foreign, request), relayer)


def test_other_verifying_contract_rejected(
    ConsentRegistry, consent, care, admin, domain, patient, provider, relayer
):
    twin = ConsentRegistry.deploy(admin, care, 3600, {"from": admin})
    request = grant_request(consent, patient, provider, patient)
    signature_for_twin = sign_grant(
        key(patient), dataclasses.replace(domain, verifying_contract=twin.address), request
    )
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, request, signature_for_twin, relayer)
    # ... while the twin itself accepts it: the signature was good, only the domain differed.
    submit_grant(twin, request, signature_for_twin, relayer)
    assert twin.hasConsent(patient, provider, TREAT, LABS)


def test_other_domain_name_or_version_rejected(consent, domain, patient, provider, relayer):
    request = grant_request(consent, patient, provider, patient)
    for other in (dataclasses.replace(domain, name="MedLedger"), dataclasses.replace(domain, version="1")):
        with brownie.reverts(invalid_signature(patient)):
            submit_grant(consent, request, sign_grant(key(patient), other, request), relayer)


def malleate(signature: bytes) -> bytes:
    """The high-s twin (r, n - s, v ^ 1) of a low-s signature: same signer under plain ecrecover."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])


def test_high_s_signature_rejected(consent, domain, patient, provider, relayer):
    request = grant_request(consent, patient, provider, patient)
    signature = sign_grant(key(patient), domain, request)
    twin = malleate(signature)
    digest = typed_data_digest(grant_typed_data(domain, request))
    r, s, v = int.from_bytes(twin[:32], "big"), int.from_bytes(twin[32:64], "big"), twin[64] - 27
    assert s > SECP256K1_N // 2
    # The malleated signature is mathematically valid for the patient...
    recovered = keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest).to_checksum_address()
    assert recovered == patient.address
    # ...but the registry only accepts canonical low-s signatures.
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, request, twin, relayer)
    submit_grant(consent, request, signature, relayer)


@pytest.mark.parametrize("length", [0, 64, 66])
def test_malformed_signature_rejected(consent, domain, patient, provider, relayer, length):
    request = grant_request(consent, patient, provider, patient)
    signature = sign_grant(key(patient), domain, request)
    with brownie.reverts(invalid_signature(patient)):
        submit_grant(consent, request, (signature + b"\x00")[:length], relayer)


# ------------------------------------------------------------------ ERC-1271


def test_contract_wallet_patient_signs(consent, domain, wallet, patient, provider, relayer):
    request = grant_request(consent, wallet.address, provider, wallet.address)
    tx = submit_grant(consent, request, sign_grant(key(patient), domain, request), relayer)
    assert tx.events["ConsentGranted"]["actor"] == wallet
    assert consent.hasConsent(wallet, provider, TREAT, LABS)
    assert consent.nonces(wallet, provider) == 1
    revoke = revoke_request(consent, wallet.address, provider, wallet.address)
    submit_revoke(consent, revoke, sign_revoke(key(patient), domain, revoke), relayer)
    assert not consent.hasConsent(wallet, provider, TREAT, LABS)


def test_contract_wallet_guardian_signs(consent, domain, wallet, patient, patient2, provider, relayer):
    consent.appointGuardian(wallet, {"from": patient2})
    request = grant_request(consent, patient2, provider, wallet.address)
    # The wallet's owner (the `patient` account) signs; the wallet vouches for it through ERC-1271.
    assert wallet.owner() == patient
    tx = submit_grant(consent, request, sign_grant(key(patient), domain, request), relayer)
    assert tx.events["ConsentGranted"]["actor"] == wallet
    assert consent.hasConsent(patient2, provider, TREAT, LABS)


def test_contract_wallet_rejects_foreign_signature(consent, domain, wallet, stranger, provider, relayer):
    request = grant_request(consent, wallet.address, provider, wallet.address)
    with brownie.reverts(invalid_signature(wallet.address)):
        submit_grant(consent, request, sign_grant(key(stranger), domain, request), relayer)


def test_contract_wallet_bad_magic_rejected(consent, domain, bad_wallet, patient, provider, relayer):
    request = grant_request(consent, bad_wallet.address, provider, bad_wallet.address)
    with brownie.reverts(invalid_signature(bad_wallet.address)):
        submit_grant(consent, request, sign_grant(key(patient), domain, request), relayer)


def test_contract_without_erc1271_rejected(consent, care, domain, patient, relayer, provider):
    """A contract signer that does not implement ERC-1271 (here: the CareRegistry) never validates."""
    request = grant_request(consent, care.address, provider, care.address)
    with brownie.reverts(invalid_signature(care.address)):
        submit_grant(consent, request, sign_grant(key(patient), domain, request), relayer)


# ------------------------------------------------------ python-side helpers


def test_typed_data_rejects_out_of_range_values(domain):
    good = dict(
        patient="0x" + "11" * 20,
        grantee="0x" + "22" * 20,
        purposes=1,
        data_classes=1,
        valid_from=0,
        valid_until=0,
        consent_doc_hash=DOC,
        signer="0x" + "11" * 20,
        nonce=0,
        deadline=1,
    )
    assert GrantRequest(**good).patient == to_checksum_address("0x" + "11" * 20)
    for field, bad in [
        ("purposes", 256),
        ("data_classes", 1 << 16),
        ("valid_until", 1 << 40),
        ("nonce", -1),
        ("deadline", True),
        ("consent_doc_hash", b"\x00" * 31),
        ("grantee", "0x1234"),
        ("signer", 42),
    ]:
        with pytest.raises(TypedDataError, match=field):
            GrantRequest(**{**good, field: bad})
    with pytest.raises(TypedDataError):
        ConsentDomain(chain_id=1, verifying_contract="not-an-address")
    with pytest.raises(MedLedgerError):
        sign_typed_data(b"\x00" * 31, grant_typed_data(domain, GrantRequest(**good)))
