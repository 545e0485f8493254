import brownie
import pytest
from brownie import CareRegistry
from eth_utils import keccak
from support.errors import reverts_with
from support.vocabulary import ARBITER_ROLE, INSURER_ROLE, PROVIDER_ROLE

ZERO32 = b"\x00" * 32


def test_registered_parties_are_active(care, provider, insurer, arbiter, stranger):
    assert care.isActive(provider, PROVIDER_ROLE)
    assert care.isActive(insurer, INSURER_ROLE)
    assert care.isActive(arbiter, ARBITER_ROLE)
    assert not care.isActive(provider, INSURER_ROLE)
    assert not care.isActive(stranger, PROVIDER_ROLE)
    assert care.activeRoleOf(stranger) == 0


def test_only_registrar_registers(care, stranger, provider):
    role = care.REGISTRAR_ROLE()
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", stranger.address, role):
        care.register(stranger, PROVIDER_ROLE, keccak(b"x"), {"from": stranger})
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", provider.address, role):
        care.suspend(stranger, ZERO32, {"from": provider})


def test_register_validates(care, registrar, provider, stranger):
    with reverts_with(CareRegistry, "PartyAlreadyRegistered", provider.address):
        care.register(provider, INSURER_ROLE, keccak(b"x"), {"from": registrar})
    with reverts_with(CareRegistry, "InvalidRole", 0):
        care.register(stranger, 0, keccak(b"x"), {"from": registrar})
    with reverts_with(CareRegistry, "EmptyMetadata"):
        care.register(stranger, PROVIDER_ROLE, b"\x00" * 32, {"from": registrar})
    with reverts_with(CareRegistry, "ZeroAccount"):
        care.register(brownie.ZERO_ADDRESS, PROVIDER_ROLE, keccak(b"x"), {"from": registrar})


def test_suspend_and_reinstate(care, admin, registrar, provider, stranger):
    """One registrar suspends at once; reinstating is the governor's (the timelock in a deployment)."""
    tx = care.suspend(provider, keccak(text="licence-expired"), {"from": registrar})
    assert tx.events["PartySuspended"]["account"] == provider
    assert not care.isActive(provider, PROVIDER_ROLE)
    assert care.activeRoleOf(provider) == 0
    with reverts_with(CareRegistry, "PartyAlreadySuspended", provider.address):
        care.suspend(provider, ZERO32, {"from": registrar})
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", registrar.address, care.GOVERNOR_ROLE()):
        care.reinstate(provider, {"from": registrar})
    care.reinstate(provider, {"from": admin})
    assert care.isActive(provider, PROVIDER_ROLE)
    with reverts_with(CareRegistry, "PartyNotSuspended", provider.address):
        care.reinstate(provider, {"from": admin})
    with reverts_with(CareRegistry, "PartyNotRegistered", stranger.address):
        care.suspend(stranger, ZERO32, {"from": registrar})


def test_metadata_commitment(care, registrar, provider):
    new = keccak(text="npi-renewed")
    care.updateMetadata(provider, new, {"from": registrar})
    assert care.metadataOf(provider) == "0x" + new.hex()


@pytest.mark.parametrize("key,ok", [(b"\x02" + b"\x11" * 32, True), (b"\x04" + b"\x11" * 64, True),
                                    (b"\x05" + b"\x11" * 32, False), (b"\x11" * 20, False), (b"", True)])
def test_encryption_key_shape(care, stranger, key, ok):
    if ok:
        care.publishEncryptionKey(key, {"from": stranger})
        assert bytes(care.encryptionKeyOf(stranger)) == key
    else:
        with reverts_with(CareRegistry, "InvalidEncryptionKey", len(key)):
            care.publishEncryptionKey(key, {"from": stranger})


# ------------------------------------------------------------------ compact party ids


def test_parties_get_sequential_ids_never_reused(care, admin, registrar, provider, provider2, insurer, arbiter,
                                                 stranger):
    """Ids follow registration order from 1 and map back to the account; suspension keeps the id
    (activePartyOf reports role None but the same id); an unregistered account has id 0."""
    registered = [provider, provider2, insurer, arbiter]  # the fixture's registration order
    ids = [care.partyOf(account)[4] for account in registered]
    assert ids == list(range(ids[0], ids[0] + len(registered))) and ids[0] >= 1
    for account, party_id in zip(registered, ids, strict=True):
        assert care.accountOf(party_id) == account
    tx = care.register(stranger, PROVIDER_ROLE, keccak(b"new"), {"from": registrar})
    assert care.partyOf(stranger)[4] == ids[-1] + 1 and care.accountOf(ids[-1] + 1) == stranger
    assert tx.events["PartyRegistered"]["account"] == stranger
    assert care.activePartyOf(provider) == (PROVIDER_ROLE, ids[0])
    care.suspend(provider, ZERO32, {"from": registrar})
    assert care.activePartyOf(provider) == (0, ids[0])
    care.reinstate(provider, {"from": admin})
    assert care.activePartyOf(provider) == (PROVIDER_ROLE, ids[0])
    assert care.activePartyOf(brownie.ZERO_ADDRESS) == (0, 0)
    assert care.accountOf(0) == brownie.ZERO_ADDRESS and care.accountOf(ids[-1] + 2) == brownie.ZERO_ADDRESS


# ------------------------------------------------------------------ separated powers (issue 18)


def test_roles_at_construction(CareRegistry, admin, registrar, stranger):
    """The admin holds DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE, the governor administers the registrars, and the
    first registrar is set by the constructor (no account can grant itself a role afterwards)."""
    care = CareRegistry.deploy(admin, registrar, {"from": admin})
    governor, registrar_role = care.GOVERNOR_ROLE(), care.REGISTRAR_ROLE()
    assert care.hasRole(ZERO32, admin) and care.hasRole(governor, admin) and care.hasRole(registrar_role, registrar)
    assert care.getRoleAdmin(registrar_role) == governor and care.getRoleAdmin(governor) == "0x" + ZERO32.hex()
    assert not care.hasRole(registrar_role, admin)
    none = CareRegistry.deploy(admin, brownie.ZERO_ADDRESS, {"from": admin})
    assert not none.hasRole(registrar_role, brownie.ZERO_ADDRESS)
    with reverts_with(CareRegistry, "ZeroAccount"):
        CareRegistry.deploy(brownie.ZERO_ADDRESS, registrar, {"from": stranger})


def test_no_account_grants_itself_a_role(care, admin, registrar):
    """Not even the governor: it cannot make itself registrar, nor the admin re-grant itself its roles."""
    for role in (care.REGISTRAR_ROLE(), care.GOVERNOR_ROLE(), ZERO32):
        with reverts_with(CareRegistry, "SelfGrant", admin.address, role):
            care.grantRole(role, admin, {"from": admin})
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", registrar.address, care.GOVERNOR_ROLE()):
        care.grantRole(care.REGISTRAR_ROLE(), registrar, {"from": registrar})
    assert not care.hasRole(care.REGISTRAR_ROLE(), admin)


def test_no_registrar_registers_itself(care, admin, registrar, stranger):
    with reverts_with(CareRegistry, "SelfRegistration", registrar.address):
        care.register(registrar, PROVIDER_ROLE, keccak(b"me"), {"from": registrar})
    with reverts_with(CareRegistry, "SelfRegistration", admin.address):
        care.register(admin, ARBITER_ROLE, keccak(b"me"), {"from": admin})
    assert care.partyOf(registrar)[0] == 0 and care.partyOf(admin)[0] == 0


def test_arbiters_are_registered_by_the_governor_only(care, admin, registrar, stranger):
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", registrar.address, care.GOVERNOR_ROLE()):
        care.register(stranger, ARBITER_ROLE, keccak(b"arb"), {"from": registrar})
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", admin.address, care.REGISTRAR_ROLE()):
        care.register(stranger, PROVIDER_ROLE, keccak(b"prov"), {"from": admin})  # the governor is no registrar
    care.register(stranger, ARBITER_ROLE, keccak(b"arb"), {"from": admin})
    assert care.isActive(stranger, ARBITER_ROLE)


def test_assign_arbiter(care, admin, registrar, insurer, arbiter, provider, stranger, accounts):
    """The governor assigns each insurer its arbiter (an active arbiter; zero unassigns); a reassignment
    replaces the earlier one; arbiterOf reports whether the assigned arbiter is active now."""
    assert care.arbiterOf(insurer) == (arbiter, True)
    other = accounts[15]
    care.register(other, ARBITER_ROLE, keccak(b"arb2"), {"from": admin})
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", registrar.address, care.GOVERNOR_ROLE()):
        care.assignArbiter(insurer, other, {"from": registrar})
    with reverts_with(CareRegistry, "AccessControlUnauthorizedAccount", arbiter.address, care.GOVERNOR_ROLE()):
        care.assignArbiter(insurer, arbiter, {"from": arbiter})
    with reverts_with(CareRegistry, "NotAnInsurer", provider.address):
        care.assignArbiter(provider, other, {"from": admin})
    with reverts_with(CareRegistry, "NotAnActiveArbiter", provider.address):
        care.assignArbiter(insurer, provider, {"from": admin})
    tx = care.assignArbiter(insurer, other, {"from": admin})
    assert tx.events["ArbiterAssigned"] == {"insurer": insurer, "arbiter": other, "governor": admin}
    assert care.arbiterOf(insurer) == (other, True)
    care.suspend(other, ZERO32, {"from": registrar})
    assert care.arbiterOf(insurer) == (other, False)
    with reverts_with(CareRegistry, "NotAnActiveArbiter", other.address):
        care.assignArbiter(insurer, other, {"from": admin})
    care.assignArbiter(insurer, brownie.ZERO_ADDRESS, {"from": admin})
    assert care.arbiterOf(insurer) == (brownie.ZERO_ADDRESS, False)
    assert care.arbiterOf(stranger) == (brownie.ZERO_ADDRESS, False)


# ----------------------------------------------------------------------------- gateway endpoints (issue 17)
RIVERSIDE = "https://records.riverside.example/fhir"


def test_an_active_provider_or_insurer_publishes_its_gateway_endpoint(care, provider, insurer):
    assert care.gatewayEndpointOf(provider) == ""
    tx = care.setGatewayEndpoint(RIVERSIDE, {"from": provider})
    assert tx.events["GatewayEndpointSet"]["account"] == provider
    assert tx.events["GatewayEndpointSet"]["url"] == RIVERSIDE
    assert care.gatewayEndpointOf(provider) == RIVERSIDE
    care.setGatewayEndpoint("https://claims.insurer.example", {"from": insurer})
    assert care.gatewayEndpointOf(insurer) == "https://claims.insurer.example"
    # replacing: the newest URL wins, the other party's is untouched
    care.setGatewayEndpoint("https://r2.riverside.example", {"from": provider})
    assert care.gatewayEndpointOf(provider) == "https://r2.riverside.example"
    assert care.gatewayEndpointOf(insurer) == "https://claims.insurer.example"


def test_gateway_endpoint_length_is_bounded(care, provider):
    limit = care.MAX_GATEWAY_ENDPOINT_LENGTH()
    assert limit == 256
    longest = "https://" + "a" * (limit - 8)
    care.setGatewayEndpoint(longest, {"from": provider})
    assert care.gatewayEndpointOf(provider) == longest
    with reverts_with(CareRegistry, "InvalidGatewayEndpoint", limit + 1, limit):
        care.setGatewayEndpoint(longest + "a", {"from": provider})
    with reverts_with(CareRegistry, "InvalidGatewayEndpoint", 0, limit):
        care.setGatewayEndpoint("", {"from": provider})
    assert care.gatewayEndpointOf(provider) == longest


def test_only_an_active_provider_or_insurer_publishes_an_endpoint(care, registrar, admin, provider, arbiter, stranger):
    for who in (stranger, arbiter, registrar, admin):  # unregistered, an arbiter, the registrar for itself
        with reverts_with(CareRegistry, "NotActiveCustodian", who.address):
            care.setGatewayEndpoint(RIVERSIDE, {"from": who})
        assert care.gatewayEndpointOf(who) == ""
    care.setGatewayEndpoint(RIVERSIDE, {"from": provider})
    care.suspend(provider, ZERO32, {"from": registrar})
    with reverts_with(CareRegistry, "NotActiveCustodian", provider.address):
        care.setGatewayEndpoint("https://elsewhere.example", {"from": provider})
    assert care.gatewayEndpointOf(provider) == RIVERSIDE  # still readable while suspended
    care.reinstate(provider, {"from": admin})  # the governor (issue 18)
    care.setGatewayEndpoint("https://elsewhere.example", {"from": provider})
    assert care.gatewayEndpointOf(provider) == "https://elsewhere.example"


def test_a_party_clears_its_own_endpoint_even_when_suspended(care, registrar, provider, provider2):
    care.setGatewayEndpoint(RIVERSIDE, {"from": provider})
    care.setGatewayEndpoint("https://northside.example", {"from": provider2})
    care.suspend(provider, ZERO32, {"from": registrar})
    tx = care.clearGatewayEndpoint({"from": provider})
    assert tx.events["GatewayEndpointSet"]["account"] == provider
    assert tx.events["GatewayEndpointSet"]["url"] == ""
    assert care.gatewayEndpointOf(provider) == ""
    assert care.gatewayEndpointOf(provider2) == "https://northside.example"  # only the caller's own


def test_no_one_sets_another_partys_endpoint(care, registrar, provider):
    # There is no setter with an account argument: the registrar's call sets (and is refused for) its own.
    assert not any(f["type"] == "function" and f["name"].lower().endswith("gatewayendpoint")
                   and any(i["type"] == "address" for i in f["inputs"]) for f in CareRegistry.abi)
    with reverts_with(CareRegistry, "NotActiveCustodian", registrar.address):
        care.setGatewayEndpoint(RIVERSIDE, {"from": registrar})
    assert care.gatewayEndpointOf(provider) == ""
