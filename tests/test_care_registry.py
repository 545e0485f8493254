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


def test_suspend_and_reinstate(care, registrar, provider, stranger):
    tx = care.suspend(provider, keccak(text="licence-expired"), {"from": registrar})
    assert tx.events["PartySuspended"]["account"] == provider
    assert not care.isActive(provider, PROVIDER_ROLE)
    assert care.activeRoleOf(provider) == 0
    with reverts_with(CareRegistry, "PartyAlreadySuspended", provider.address):
        care.suspend(provider, ZERO32, {"from": registrar})
    care.reinstate(provider, {"from": registrar})
    assert care.isActive(provider, PROVIDER_ROLE)
    with reverts_with(CareRegistry, "PartyNotSuspended", provider.address):
        care.reinstate(provider, {"from": registrar})
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


def test_parties_get_sequential_ids_never_reused(care, registrar, provider, provider2, insurer, arbiter, stranger):
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
    care.reinstate(provider, {"from": registrar})
    assert care.activePartyOf(provider) == (PROVIDER_ROLE, ids[0])
    assert care.activePartyOf(brownie.ZERO_ADDRESS) == (0, 0)
    assert care.accountOf(0) == brownie.ZERO_ADDRESS and care.accountOf(ids[-1] + 2) == brownie.ZERO_ADDRESS


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
    care.reinstate(provider, {"from": registrar})
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
