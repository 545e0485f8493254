"""ConsentRegistry: grants, scope, validity, revocation, guardians, break-glass and registry status."""

import pytest
from brownie import ZERO_ADDRESS, ConsentRegistry, chain
from eth_utils import keccak
from support.consent import BREAK_GLASS_MAX
from support.errors import reverts_with
from support.vocabulary import (
    ALL_CLASSES,
    BILLING,
    CONDITIONS,
    COVERAGE,
    DEMOGRAPHICS,
    ETREAT,
    GENOMICS,
    HOPERAT,
    HPAYMT,
    HRESCH,
    IMAGING,
    LABS,
    MEDICATIONS,
    MENTAL_HEALTH,
    NOTES,
    SUBSTANCE_USE,
    TREAT,
    DataClass,
    Purpose,
    bit,
)

from medledger import scopes

PURPOSES = tuple(Purpose)
DATA_CLASSES = tuple(DataClass)
SENSITIVE = tuple(sorted(scopes.SENSITIVE))
NON_SENSITIVE_MASK = bit(*(c for c in DataClass if c not in scopes.SENSITIVE))  # 0x00FF
ALL_CLASSES_MASK = ALL_CLASSES  # 0x07FF
DOC = keccak(text="fhir:Consent/123|v1")
ZERO32 = b"\x00" * 32
REASON = keccak(text="ER-UNCONSCIOUS")
HOUR = 3600


def mask(*indices: int) -> int:
    value = 0
    for index in indices:
        value |= 1 << index
    return value


def live_matrix(consent, patient, grantee) -> set[tuple[int, int]]:
    """Every (purpose, data class) pair hasConsent answers true for."""
    return {(p, c) for p in PURPOSES for c in DATA_CLASSES if consent.hasConsent(patient, grantee, p, c)}


def expected(purposes: int, classes: int) -> set[tuple[int, int]]:
    return {(p, c) for p in PURPOSES for c in DATA_CLASSES if purposes >> p & 1 and classes >> c & 1}


# ---------------------------------------------------------------- deployment


def test_deployment(consent, care, admin):
    assert consent.registry() == care
    assert consent.maxBreakGlassDuration() == BREAK_GLASS_MAX
    assert consent.hasRole(consent.DEFAULT_ADMIN_ROLE(), admin)
    assert consent.MAX_BREAK_GLASS_CAP() == 72 * HOUR


def test_constructor_validates(ConsentRegistry, care, admin):
    with reverts_with(ConsentRegistry, "ZeroAddress"):
        ConsentRegistry.deploy(ZERO_ADDRESS, care, HOUR, {"from": admin})
    with reverts_with(ConsentRegistry, "ZeroAddress"):
        ConsentRegistry.deploy(admin, ZERO_ADDRESS, HOUR, {"from": admin})
    for bad in (0, 72 * HOUR + 1):
        with reverts_with(ConsentRegistry, "InvalidMaxBreakGlassDuration", bad):
            ConsentRegistry.deploy(admin, care, bad, {"from": admin})


# -------------------------------------------------------------------- grant


def test_grant_stores_scope_and_emits_history(consent, patient, provider):
    purposes, classes = mask(TREAT, HPAYMT), mask(CONDITIONS, LABS, GENOMICS)
    valid_until = chain.time() + 30 * 24 * HOUR
    tx = consent.grant(patient, provider, purposes, classes, 0, valid_until, DOC, {"from": patient})
    assert tx.gas_used <= 55_000, tx.gas_used
    assert tx.events["ConsentGranted"] == {
        "patient": patient,
        "grantee": provider,
        "actor": patient,
        "purposes": purposes,
        "dataClasses": classes,
        "validFrom": 0,
        "validUntil": valid_until,
        "consentDocHash": "0x" + DOC.hex(),
    }
    assert consent.consentOf(patient, provider) == (purposes, classes, 0, valid_until, tx.timestamp, 1)
    assert live_matrix(consent, patient, provider) == expected(purposes, classes)


def test_consent_is_per_patient_and_grantee(consent, patient, patient2, provider, provider2):
    consent.grant(patient, provider, mask(TREAT), mask(LABS), 0, 0, DOC, {"from": patient})
    assert consent.hasConsent(patient, provider, TREAT, LABS)
    assert not consent.hasConsent(patient, provider2, TREAT, LABS)
    assert not consent.hasConsent(patient2, provider, TREAT, LABS)
    assert consent.consentOf(patient2, provider) == (0, 0, 0, 0, 0, 0)


def test_sensitive_classes_need_their_own_bit(consent, patient, provider):
    all_purposes = mask(*PURPOSES)
    consent.grant(patient, provider, all_purposes, NON_SENSITIVE_MASK, 0, 0, DOC, {"from": patient})
    for cls in SENSITIVE:
        for purpose in PURPOSES:
            assert not consent.hasConsent(patient, provider, purpose, cls)
    consent.grant(
        patient, provider, mask(TREAT), NON_SENSITIVE_MASK | mask(GENOMICS), 0, 0, DOC, {"from": patient}
    )
    assert consent.hasConsent(patient, provider, TREAT, GENOMICS)
    assert not consent.hasConsent(patient, provider, TREAT, MENTAL_HEALTH)
    assert not consent.hasConsent(patient, provider, TREAT, SUBSTANCE_USE)


def test_out_of_range_purpose_or_class_is_never_covered(consent, patient, provider):
    consent.grant(patient, provider, 0x3F, ALL_CLASSES_MASK, 0, 0, DOC, {"from": patient})
    assert consent.hasConsent(patient, provider, COVERAGE, SUBSTANCE_USE)
    for purpose, cls in [(6, 0), (7, 0), (8, 0), (255, 0), (0, 11), (0, 15), (0, 16), (0, 255)]:
        assert not consent.hasConsent(patient, provider, purpose, cls)


def test_grant_validates_input(consent, patient, provider):
    now = chain.time()
    with reverts_with(ConsentRegistry, "InvalidGrantee", ZERO_ADDRESS):
        consent.grant(patient, ZERO_ADDRESS, 1, 1, 0, 0, DOC, {"from": patient})
    with reverts_with(ConsentRegistry, "InvalidGrantee", patient.address):
        consent.grant(patient, patient, 1, 1, 0, 0, DOC, {"from": patient})
    for purposes, classes in [(0, 1), (1, 0), (0x40, 1), (0x80, 1), (1, 0x0800), (1, 0x8000)]:
        with reverts_with(ConsentRegistry, "InvalidScope", purposes, classes):
            consent.grant(patient, provider, purposes, classes, 0, 0, DOC, {"from": patient})
    for valid_from, valid_until in [(now + 100, now + 100), (now + 100, now + 50), (0, now - 10)]:
        with reverts_with(ConsentRegistry, "InvalidValidity", valid_from, valid_until):
            consent.grant(patient, provider, 1, 1, valid_from, valid_until, DOC, {"from": patient})
    with reverts_with(ConsentRegistry, "ZeroAddress"):
        consent.grant(ZERO_ADDRESS, provider, 1, 1, 0, 0, DOC, {"from": patient})


def test_only_patient_or_guardian_grants_and_revokes(
    consent, patient, patient2, provider, stranger, guardian
):
    for actor in (stranger, provider, patient2, guardian):
        with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, actor.address):
            consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": actor})
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    for actor in (stranger, provider, guardian):
        with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, actor.address):
            consent.revoke(patient, provider, {"from": actor})
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


def test_regrant_narrows_and_widens(consent, patient, provider):
    consent.grant(
        patient, provider, mask(TREAT, HOPERAT), mask(LABS, NOTES, IMAGING), 0, 0, DOC, {"from": patient}
    )
    narrow = consent.grant(patient, provider, mask(TREAT), mask(LABS), 0, 0, DOC, {"from": patient})
    assert narrow.events["ConsentGranted"]["purposes"] == mask(TREAT)
    assert live_matrix(consent, patient, provider) == {(TREAT, LABS)}
    consent.grant(
        patient, provider, mask(TREAT, HRESCH), mask(LABS, MEDICATIONS), 0, 0, DOC, {"from": patient}
    )
    assert live_matrix(consent, patient, provider) == expected(mask(TREAT, HRESCH), mask(LABS, MEDICATIONS))


def test_regrant_replaces_validity(consent, patient, provider):
    now = chain.time()
    consent.grant(patient, provider, 1, 1, 0, now + HOUR, DOC, {"from": patient})
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    chain.mine(timestamp=now + 2 * HOUR)
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    consent.grant(patient, provider, 1, 1, now + 10 * HOUR, 0, DOC, {"from": patient})
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


# ------------------------------------------------------------------ validity


def test_expiry_is_exclusive(consent, patient, provider):
    valid_until = chain.time() + HOUR
    consent.grant(patient, provider, 1, 1, 0, valid_until, DOC, {"from": patient})
    chain.mine(timestamp=valid_until - 1)
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    chain.mine(timestamp=valid_until)
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    chain.sleep(365 * 24 * HOUR)
    chain.mine()
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


def test_future_consent_is_not_yet_live(consent, patient, provider):
    valid_from = chain.time() + 2 * HOUR
    consent.grant(patient, provider, 1, 1, valid_from, valid_from + HOUR, DOC, {"from": patient})
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    chain.mine(timestamp=valid_from - 1)
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    chain.mine(timestamp=valid_from)
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    chain.sleep(HOUR)
    chain.mine()
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


def test_open_ended_consent_lasts(consent, patient, provider):
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    chain.sleep(10 * 365 * 24 * HOUR)
    chain.mine()
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


# -------------------------------------------------------------------- revoke


def test_revoke_is_effective_in_its_block(consent, patient, provider):
    consent.grant(patient, provider, mask(TREAT, HPAYMT), NON_SENSITIVE_MASK, 0, 0, DOC, {"from": patient})
    tx = consent.revoke(patient, provider, {"from": patient})
    assert tx.gas_used <= 32_000, tx.gas_used
    assert tx.events["ConsentRevoked"] == {"patient": patient, "grantee": provider, "actor": patient}
    # eth_call runs against the revoking block itself: nothing is live any more.
    assert chain[-1].number == tx.block_number
    assert live_matrix(consent, patient, provider) == set()
    assert consent.consentOf(patient, provider) == (0, 0, 0, 0, 0, 2)  # only the pair's signature nonce stays


def test_revoke_needs_a_consent(consent, patient, provider):
    with reverts_with(ConsentRegistry, "ConsentNotFound", patient.address, provider.address):
        consent.revoke(patient, provider, {"from": patient})
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    consent.revoke(patient, provider, {"from": patient})
    with reverts_with(ConsentRegistry, "ConsentNotFound", patient.address, provider.address):
        consent.revoke(patient, provider, {"from": patient})


def test_expired_consent_can_still_be_revoked(consent, patient, provider):
    valid_until = chain.time() + HOUR
    consent.grant(patient, provider, 1, 1, 0, valid_until, DOC, {"from": patient})
    chain.mine(timestamp=valid_until + 1)
    consent.revoke(patient, provider, {"from": patient})
    assert consent.consentOf(patient, provider) == (0, 0, 0, 0, 0, 2)


def test_regrant_after_revoke(consent, patient, provider):
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    consent.revoke(patient, provider, {"from": patient})
    consent.grant(patient, provider, mask(HPAYMT), mask(BILLING), 0, 0, DOC, {"from": patient})
    assert live_matrix(consent, patient, provider) == {(HPAYMT, BILLING)}


# ---------------------------------------------------------- registry status


def test_grantee_must_be_active_in_registry(consent, care, registrar, patient, provider, stranger):
    consent.grant(patient, stranger, 1, 1, 0, 0, DOC, {"from": patient})
    assert consent.consentOf(patient, stranger)[0] == 1
    assert not consent.hasConsent(patient, stranger, TREAT, DEMOGRAPHICS)
    care.register(stranger, 1, keccak(text="late-provider"), {"from": registrar})
    assert consent.hasConsent(patient, stranger, TREAT, DEMOGRAPHICS)


def test_any_active_role_may_hold_consent(consent, patient, insurer, arbiter):
    consent.grant(patient, insurer, mask(HPAYMT, COVERAGE), mask(BILLING), 0, 0, DOC, {"from": patient})
    consent.grant(patient, arbiter, mask(HPAYMT), mask(BILLING, CONDITIONS), 0, 0, DOC, {"from": patient})
    assert consent.hasConsent(patient, insurer, COVERAGE, BILLING)
    assert consent.hasConsent(patient, arbiter, HPAYMT, CONDITIONS)


def test_suspended_grantee_loses_consent_until_reinstated(admin, consent, care, registrar, patient, provider):
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    care.suspend(provider, keccak(text="licence-lapsed"), {"from": registrar})
    assert not consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)
    care.reinstate(provider, {"from": admin})
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


def test_has_consent_gas(consent, patient, provider):
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": patient})
    # 21000 intrinsic + calldata + one consent slot + one CareRegistry call (cold account + slot).
    assert consent.hasConsent.estimate_gas(patient, provider, TREAT, DEMOGRAPHICS) < 33_000


# ----------------------------------------------------------------- guardians


def test_appoint_and_remove_guardian(consent, patient, guardian):
    tx = consent.appointGuardian(guardian, {"from": patient})
    assert tx.events["GuardianAppointed"] == {"patient": patient, "guardian": guardian, "actor": patient}
    assert consent.isGuardian(patient, guardian)
    with reverts_with(ConsentRegistry, "GuardianAlreadyAppointed", patient.address, guardian.address):
        consent.appointGuardian(guardian, {"from": patient})
    tx = consent.removeGuardian(guardian, {"from": patient})
    assert tx.events["GuardianRemoved"] == {"patient": patient, "guardian": guardian, "actor": patient}
    assert not consent.isGuardian(patient, guardian)
    with reverts_with(ConsentRegistry, "GuardianNotAppointed", patient.address, guardian.address):
        consent.removeGuardian(guardian, {"from": patient})


def test_guardian_validation(consent, patient):
    with reverts_with(ConsentRegistry, "InvalidGuardian", ZERO_ADDRESS):
        consent.appointGuardian(ZERO_ADDRESS, {"from": patient})
    with reverts_with(ConsentRegistry, "InvalidGuardian", patient.address):
        consent.appointGuardian(patient, {"from": patient})


def test_guardian_grants_and_revokes_for_patient(consent, patient, guardian, provider):
    consent.appointGuardian(guardian, {"from": patient})
    tx = consent.grant(patient, provider, mask(TREAT), mask(LABS), 0, 0, DOC, {"from": guardian})
    assert tx.events["ConsentGranted"]["actor"] == guardian
    assert tx.events["ConsentGranted"]["patient"] == patient
    assert consent.hasConsent(patient, provider, TREAT, LABS)
    tx = consent.revoke(patient, provider, {"from": guardian})
    assert tx.events["ConsentRevoked"]["actor"] == guardian
    assert not consent.hasConsent(patient, provider, TREAT, LABS)


def test_guardianship_is_per_patient(consent, patient, patient2, guardian, provider):
    consent.appointGuardian(guardian, {"from": patient})
    assert not consent.isGuardian(patient2, guardian)
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient2.address, guardian.address):
        consent.grant(patient2, provider, 1, 1, 0, 0, DOC, {"from": guardian})


def test_guardian_cannot_appoint_or_remove_guardians_for_patient(consent, patient, guardian, stranger):
    consent.appointGuardian(guardian, {"from": patient})
    # The guardian's own appoint/remove calls act on the guardian's own guardians, never the patient's.
    consent.appointGuardian(stranger, {"from": guardian})
    assert consent.isGuardian(guardian, stranger)
    assert not consent.isGuardian(patient, stranger)
    with reverts_with(ConsentRegistry, "GuardianNotAppointed", guardian.address, guardian.address):
        consent.removeGuardian(guardian, {"from": guardian})
    assert consent.isGuardian(patient, guardian)


def test_removed_guardian_loses_powers(consent, patient, guardian, provider):
    consent.appointGuardian(guardian, {"from": patient})
    consent.grant(patient, provider, 1, 1, 0, 0, DOC, {"from": guardian})
    consent.removeGuardian(guardian, {"from": patient})
    with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, guardian.address):
        consent.revoke(patient, provider, {"from": guardian})
    # What the guardian granted while appointed stays until the patient changes it.
    assert consent.hasConsent(patient, provider, TREAT, DEMOGRAPHICS)


# --------------------------------------------------------------- break-glass


def test_break_glass_grants_etreat_on_every_defined_class_bit(consent, patient, provider):
    """Interface 3: a pairwise pseudonym's bits are labels, so the chain cannot single out the sensitive
    classes; break-glass covers every defined bit and the gateway excludes the sensitive classes."""
    tx = consent.openBreakGlass(patient, 4 * HOUR, REASON, {"from": provider})
    expires = tx.timestamp + 4 * HOUR
    assert tx.events["BreakGlassOpened"] == {
        "patient": patient,
        "provider": provider,
        "reasonCode": "0x" + REASON.hex(),
        "expiresAt": expires,
    }
    assert consent.breakGlassOf(patient, provider) == (tx.timestamp, expires, tx.timestamp, 1, False)
    assert live_matrix(consent, patient, provider) == {(ETREAT, c) for c in DATA_CLASSES}
    assert not consent.hasConsent(patient, provider, ETREAT, len(DATA_CLASSES))  # an undefined bit never


def test_break_glass_expires(consent, patient, provider):
    tx = consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    chain.mine(timestamp=tx.timestamp + HOUR - 1)
    assert consent.hasConsent(patient, provider, ETREAT, LABS)
    chain.mine(timestamp=tx.timestamp + HOUR)
    assert not consent.hasConsent(patient, provider, ETREAT, LABS)
    with reverts_with(ConsentRegistry, "BreakGlassNotOpen", patient.address, provider.address):
        consent.closeBreakGlass(patient, provider, {"from": patient})
    reopened = consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    assert consent.breakGlassOf(patient, provider) == (reopened.timestamp, reopened.timestamp + HOUR, tx.timestamp, 2,
                                                       False)
    assert consent.hasConsent(patient, provider, ETREAT, LABS)


def test_break_glass_duration_bounds(consent, admin, patient, provider):
    with reverts_with(ConsentRegistry, "InvalidBreakGlassDuration", 0, BREAK_GLASS_MAX):
        consent.openBreakGlass(patient, 0, REASON, {"from": provider})
    with reverts_with(ConsentRegistry, "InvalidBreakGlassDuration", BREAK_GLASS_MAX + 1, BREAK_GLASS_MAX):
        consent.openBreakGlass(patient, BREAK_GLASS_MAX + 1, REASON, {"from": provider})
    consent.setMaxBreakGlassDuration(2 * HOUR, {"from": admin})
    with reverts_with(ConsentRegistry, "InvalidBreakGlassDuration", 2 * HOUR + 1, 2 * HOUR):
        consent.openBreakGlass(patient, 2 * HOUR + 1, REASON, {"from": provider})
    tx = consent.openBreakGlass(patient, 2 * HOUR, REASON, {"from": provider})
    assert tx.events["BreakGlassOpened"]["expiresAt"] == tx.timestamp + 2 * HOUR


def test_break_glass_validation(consent, patient, provider):
    with reverts_with(ConsentRegistry, "EmptyReasonCode"):
        consent.openBreakGlass(patient, HOUR, ZERO32, {"from": provider})
    with reverts_with(ConsentRegistry, "ZeroAddress"):
        consent.openBreakGlass(ZERO_ADDRESS, HOUR, REASON, {"from": provider})
    tx = consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    expires = tx.timestamp + HOUR
    with reverts_with(ConsentRegistry, "BreakGlassAlreadyOpen", patient.address, provider.address, expires):
        consent.openBreakGlass(patient, 2 * HOUR, REASON, {"from": provider})


def test_only_active_providers_open_break_glass(
    consent, care, registrar, patient, provider, insurer, arbiter, stranger
):
    for account in (insurer, arbiter, stranger, patient):
        with reverts_with(ConsentRegistry, "NotActiveProvider", account.address):
            consent.openBreakGlass(patient, HOUR, REASON, {"from": account})
    care.suspend(provider, keccak(text="investigation"), {"from": registrar})
    with reverts_with(ConsentRegistry, "NotActiveProvider", provider.address):
        consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})


def test_suspended_provider_loses_break_glass_until_reinstated(admin, consent, care, registrar, patient, provider):
    consent.openBreakGlass(patient, 4 * HOUR, REASON, {"from": provider})
    care.suspend(provider, keccak(text="investigation"), {"from": registrar})
    assert not consent.hasConsent(patient, provider, ETREAT, LABS)
    care.reinstate(provider, {"from": admin})
    assert consent.hasConsent(patient, provider, ETREAT, LABS)


def test_patient_or_guardian_closes_break_glass(consent, patient, guardian, provider, provider2, stranger):
    consent.appointGuardian(guardian, {"from": patient})
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider2})
    for actor in (stranger, provider):
        with reverts_with(ConsentRegistry, "NotPatientOrGuardian", patient.address, actor.address):
            consent.closeBreakGlass(patient, provider, {"from": actor})
    tx = consent.closeBreakGlass(patient, provider, {"from": patient})
    assert tx.events["BreakGlassClosed"] == {"patient": patient, "provider": provider, "actor": patient}
    assert not consent.hasConsent(patient, provider, ETREAT, LABS)
    opened_at, expires_at, _, openings, blocked = consent.breakGlassOf(patient, provider)
    assert expires_at == tx.timestamp and openings == 1 and blocked  # closed now, reopening blocked
    tx = consent.closeBreakGlass(patient, provider2, {"from": guardian})
    assert tx.events["BreakGlassClosed"]["actor"] == guardian
    assert not consent.hasConsent(patient, provider2, ETREAT, LABS)
    with reverts_with(ConsentRegistry, "BreakGlassNotOpen", patient.address, provider2.address):
        consent.closeBreakGlass(patient, provider2, {"from": patient})


def test_consent_is_checked_before_break_glass(consent, patient, provider):
    consent.grant(patient, provider, mask(TREAT), mask(MENTAL_HEALTH), 0, 0, DOC, {"from": patient})
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    assert consent.hasConsent(patient, provider, TREAT, MENTAL_HEALTH)
    assert consent.hasConsent(patient, provider, ETREAT, LABS)
    assert not consent.hasConsent(patient, provider, HPAYMT, MENTAL_HEALTH)  # break-glass is ETREAT only
    consent.revoke(patient, provider, {"from": patient})
    assert consent.hasConsent(patient, provider, ETREAT, MENTAL_HEALTH)  # every label bit (interface 3)
    assert not consent.hasConsent(patient, provider, TREAT, MENTAL_HEALTH)
    assert consent.hasConsent(patient, provider, ETREAT, LABS)
    assert not consent.hasConsent(patient, provider, TREAT, LABS)


def test_break_glass_is_per_provider(consent, patient, patient2, provider, provider2):
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    assert not consent.hasConsent(patient, provider2, ETREAT, LABS)
    assert not consent.hasConsent(patient2, provider, ETREAT, LABS)


@pytest.mark.parametrize("duration", [1, 72 * HOUR])
def test_admin_sets_break_glass_max(consent, admin, duration):
    tx = consent.setMaxBreakGlassDuration(duration, {"from": admin})
    assert tx.events["MaxBreakGlassDurationSet"] == {"duration": duration, "actor": admin}
    assert consent.maxBreakGlassDuration() == duration


def test_break_glass_max_is_bounded_and_admin_only(consent, admin, provider):
    for bad in (0, 72 * HOUR + 1, 2**32 - 1):
        with reverts_with(ConsentRegistry, "InvalidMaxBreakGlassDuration", bad):
            consent.setMaxBreakGlassDuration(bad, {"from": admin})
    with reverts_with(ConsentRegistry, "AccessControlUnauthorizedAccount", provider.address, ZERO32):
        consent.setMaxBreakGlassDuration(HOUR, {"from": provider})


# --------------------------------------------------------------- treatingProviderId (record authorship)


def test_treating_provider_id_needs_treat_consent_for_the_class(consent, care, patient, provider, insurer):
    provider_id = care.partyOf(provider)[4]
    assert provider_id != 0
    assert consent.treatingProviderId(patient, provider, LABS) == 0
    consent.grant(patient, provider, mask(HPAYMT, HOPERAT), mask(LABS), 0, 0, DOC, {"from": patient})
    assert consent.treatingProviderId(patient, provider, LABS) == 0  # consent, but not for TREAT
    consent.grant(patient, provider, mask(TREAT), mask(LABS, GENOMICS), 0, 0, DOC, {"from": patient})
    assert consent.treatingProviderId(patient, provider, LABS) == provider_id
    assert consent.treatingProviderId(patient, provider, GENOMICS) == provider_id  # granted explicitly
    assert consent.treatingProviderId(patient, provider, IMAGING) == 0
    assert consent.treatingProviderId(patient, provider, 11) == 0
    assert consent.treatingProviderId(patient, provider, 255) == 0
    # An insurer holding TREAT consent is still no treating provider.
    consent.grant(patient, insurer, mask(TREAT), mask(LABS), 0, 0, DOC, {"from": patient})
    assert consent.hasConsent(patient, insurer, TREAT, LABS)
    assert consent.treatingProviderId(patient, insurer, LABS) == 0


def test_treating_provider_id_follows_suspension_expiry_and_revocation(admin, consent, care, registrar, patient,
                                                                       provider):
    provider_id = care.partyOf(provider)[4]
    start = chain.time()
    tx = consent.grant(patient, provider, mask(TREAT), mask(LABS), 0, start + 2 * HOUR, DOC, {"from": patient})
    assert consent.treatingProviderId(patient, provider, LABS) == provider_id
    care.suspend(provider, ZERO32, {"from": registrar})
    assert consent.treatingProviderId(patient, provider, LABS) == 0
    care.reinstate(provider, {"from": admin})
    assert consent.treatingProviderId(patient, provider, LABS) == provider_id
    chain.mine(timestamp=tx.timestamp + 2 * HOUR + 10)
    assert consent.treatingProviderId(patient, provider, LABS) == 0
    consent.grant(patient, provider, mask(TREAT), mask(LABS), 0, 0, DOC, {"from": patient})
    consent.revoke(patient, provider, {"from": patient})
    assert consent.treatingProviderId(patient, provider, LABS) == 0


def test_break_glass_reads_every_defined_class_bit_and_never_makes_a_treating_provider(consent, care, patient,
                                                                                         provider):
    """Interface 2: break-glass reads but never makes a treating provider; interface 3: it reads every
    defined bit 0-10 (the gateway excludes the sensitive classes)."""
    consent.openBreakGlass(patient, HOUR, REASON, {"from": provider})
    for data_class in range(16):
        covered = data_class <= max(DATA_CLASSES)  # bits 0-10; undefined 11-15 never
        assert consent.treatingProviderId(patient, provider, data_class) == 0
        assert consent.hasConsent(patient, provider, ETREAT, data_class) == covered
    assert consent.treatingProviderId(patient, provider, 16) == 0
    assert not consent.hasConsent(patient, provider, ETREAT, 16)
