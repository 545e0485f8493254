"""No PHI on chain: run the demo scenario, then scan every transaction input and every log for the
plaintext fields of the FHIR documents it used (names, birth dates, MRN/SSN identifiers, address
lines, telecom, diagnosis/procedure/lab/medication codes and amounts). Also checks that the demo's
governance ran through its Safe."""
import json
import os
from pathlib import Path

import pytest
from brownie import accounts, web3
from web3.logs import DISCARD

from medledger.safe import safe_artifact
from medledger.testing import synthetic
from scripts.demo_scenario import run_scenario

MIN_LEN = 4  # shorter values (e.g. 3-letter codes) would match random hash bytes by chance


def chain_bytes() -> list[bytes]:
    """Every transaction input and every log (topics and data) from genesis to the latest block."""
    blobs = []
    latest = web3.eth.block_number
    for number in range(latest + 1):
        block = web3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            blobs.append(bytes(tx["input"]))
    for log in web3.eth.get_logs({"fromBlock": 0, "toBlock": latest}):
        blobs.append(bytes(log["data"]) + b"".join(bytes(t) for t in log["topics"]))
    return blobs


def encodings(value: str) -> list[bytes]:
    """The ways a plaintext value could sit in calldata or a log."""
    forms = [value.encode(), value.upper().encode(), value.lower().encode()]
    digits = value.replace("-", "").replace(".", "")
    if digits.isdigit() and len(digits) >= 6:
        forms.append(int(digits).to_bytes(32, "big"))  # an identifier or amount packed as a uint
    try:
        amount = float(value)
        forms.append(int(round(amount * 10**6)).to_bytes(32, "big"))  # an amount in 6-decimal units
    except ValueError:
        pass
    return forms


def find_phi(blobs: list[bytes], values: set[str]) -> list[str]:
    haystack = b"\x00".join(blobs)
    return sorted(v for v in values if any(form in haystack for form in encodings(v)))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return run_scenario(web3.provider.endpoint_uri, tmp_path_factory.mktemp("demo"), batch_size=30)


def test_demo_puts_no_phi_on_chain(scenario):
    values: set[str] = set()
    for doc in scenario.documents:
        if doc.get("resourceType") == "Bundle":
            values.update(v for v in synthetic.phi_fields(doc).all() if len(v) >= MIN_LEN)
    assert len(values) > 500  # names, dates, ids, addresses, codes and amounts of ~35 bundles
    blobs = chain_bytes()
    assert len(blobs) > 100
    assert find_phi(blobs, values) == []


def test_the_scan_finds_planted_phi(scenario):
    """The scanner is not blind: a name sent in calldata is found."""
    bundle = next(d for d in scenario.documents if d.get("resourceType") == "Bundle")
    name = next(v for v in synthetic.phi_fields(bundle).names if len(v) >= MIN_LEN)
    accounts[9].transfer(accounts[9], 0, data="0x" + f"note: {name}".encode().hex())
    assert name in find_phi(chain_bytes(), {name})


def test_demo_shows_the_gateway_and_the_index(scenario):
    """Step 7: a real gateway served the record it stored (same canonical bytes), refused Northside, Acme's
    wrong purpose and, after the revoke, Riverside; proved a read on chain; stopped; the index answered."""
    gw, ix = scenario.gateway, scenario.index
    assert gw["record_id"].startswith("0x") and gw["digest"].startswith("0x")
    assert gw["audit_seq"] >= 1 and gw["audit_root"].startswith("0x")
    northside, acme, revoked = gw["refusals"]
    assert "not found" in northside and "no consent for purpose TREAT" in acme and "not found" in revoked
    assert gw["exit_code"] is not None
    with pytest.raises(ProcessLookupError):
        os.kill(gw["pid"], 0)  # no stray gateway process
    assert sum(ix["claims"].values()) == 4 and ix["indexed_to"] >= gw["revoke_block"]


def _contract(name: str, address: str):
    abi = json.loads((Path(__file__).resolve().parents[1] / f"build/contracts/{name}.json").read_text())["abi"]
    return web3.eth.contract(address=address, abi=abi)


def test_demo_governance_runs_through_the_safe(scenario):
    """Step 1: a 2-of-3 Safe holds the registrar and pauser roles and is the only proposer of the timelock that
    holds the governor and admin roles; the deployer holds none. The insurer and providers were registered by
    Safe transactions (one signature alone was refused); the arbiter was registered and assigned to the insurer
    by the timelock, on operations the Safe scheduled (issue 18: separated powers)."""
    safe, deployer = scenario.safe["address"], scenario.addresses["governance"]
    timelock = _contract("TimelockController", scenario.contracts["TimelockController"])
    owners = {scenario.addresses[o] for o in scenario.safe["owners"]}
    wallet = web3.eth.contract(address=safe, abi=safe_artifact("Safe")["abi"])
    assert set(wallet.functions.getOwners().call()) == owners and wallet.functions.getThreshold().call() == 2
    assert deployer not in owners
    assert timelock.functions.hasRole(timelock.functions.PROPOSER_ROLE().call(), safe).call()
    assert not timelock.functions.hasRole(timelock.functions.PROPOSER_ROLE().call(), deployer).call()
    for name in ("CareRegistry", "ConsentRegistry", "ClaimEscrow"):
        contract = _contract(name, scenario.contracts[name])
        holders = {b"\x00" * 32: timelock.address}
        for role, holder in (("GOVERNOR_ROLE", timelock.address), ("REGISTRAR_ROLE", safe), ("PAUSER_ROLE", safe)):
            if any(i.get("name") == role for i in contract.abi):
                holders[getattr(contract.functions, role)().call()] = holder
        for role, holder in holders.items():
            assert contract.functions.hasRole(role, holder).call(), (name, role.hex())
            assert not contract.functions.hasRole(role, deployer).call(), (name, role.hex())

    care = _contract("CareRegistry", scenario.contracts["CareRegistry"])
    registered = {}
    for tx in scenario.safe["executed"]:
        assert web3.eth.get_transaction(tx)["to"] == safe
        receipt = web3.eth.get_transaction_receipt(tx)
        assert wallet.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
        for event in care.events.PartyRegistered().process_receipt(receipt, errors=DISCARD):
            registered[event["args"]["account"]] = event["args"]["registrar"]
    parties = {scenario.addresses[p] for p in ("acme", "riverside", "northside")}
    assert registered == dict.fromkeys(parties, safe)
    every = {e["args"]["account"]: e["args"]["registrar"] for e in care.events.PartyRegistered().get_logs(from_block=0)}
    reyes, acme = scenario.addresses["reyes"], scenario.addresses["acme"]
    assert every == {**dict.fromkeys(parties, safe), reyes: timelock.address}
    assert care.functions.arbiterOf(acme).call() == [reyes, True]
    assert len(timelock.events.CallExecuted().get_logs(from_block=0)) == 2
    assert any("1 valid owner signature(s)" in r and "needs 2" in r for r in scenario.refused)
    assert any(r.startswith("not ready: the timelock releases") for r in scenario.refused)


# --------------------------------------------------------------------------- the observer (issue #14)
# Given the patients' wallet addresses and everything public, the observer must learn nothing about them:
# no provider, insurer, data class, record count or claim amount (docs/PRIVACY.md, "What an observer
# learns"). The demo's patients act through pairwise pseudonyms, so their wallets never reach the chain.

def _observer(scenario):
    from medledger.audit import _artifact_name
    from tests.support.observer import Observer, PublicChain

    contracts = {name: web3.eth.contract(address=address, abi=_abi(_artifact_name(name)))
                 for name, address in scenario.contracts.items() if name in DEPLOYED}
    care = contracts["CareRegistry"]
    parties = [log["args"]["account"] for log in care.events.PartyRegistered.get_logs(from_block=0)]
    services = [scenario.addresses[name] for name in ("governance", "relay", "priya", "omar", "lena")
                if name in scenario.addresses]  # public services and the Safe's owners
    senders = {tx["to"] for n in range(web3.eth.block_number + 1)
               for tx in web3.eth.get_block(n, full_transactions=True)["transactions"] if tx["to"]}
    code = [a for a in senders if web3.eth.get_code(a)]  # every contract (registries, token, Safe…) is public
    return Observer(PublicChain(web3), [*parties, *services, *code], parties, contracts)


DEPLOYED = ("Stablecoin", "CareRegistry", "ConsentRegistry", "RecordRegistry", "ClaimEscrow")


def _abi(name):
    import json
    from pathlib import Path
    return json.loads((Path(__file__).parent.parent / "build" / "contracts" / f"{name}.json").read_text())["abi"]


@pytest.fixture(scope="module")
def observer(scenario):
    return _observer(scenario)


PATIENTS = ("alice", "bob", "carol")


def test_an_observer_holding_the_patients_wallets_learns_nothing(scenario, observer):
    names = {v: k for k, v in scenario.addresses.items()}
    for patient in PATIENTS:
        linkage = observer.link(scenario.addresses[patient])
        assert linkage.empty, f"{patient}: {linkage.describe(names)}"


def test_the_observer_is_not_blind_to_a_pseudonym(scenario, observer):
    """Holding a pseudonym instead (what its counterparty knows), the observer names that relationship, its
    records and claims, but still not the patient's other relationships."""
    a = scenario.addresses
    at_riverside = observer.link(scenario.pseudonyms[("alice", "riverside")])
    assert a["riverside"] in at_riverside.parties and len(at_riverside.items) > 5
    assert a["acme"] not in at_riverside.parties and a["northside"] not in at_riverside.parties
    bob_at_riverside = observer.link(scenario.pseudonyms[("bob", "riverside")])
    assert a["northside"] in bob_at_riverside.parties  # the break-glass window is on Bob's Riverside pseudonym
    member = observer.link(scenario.pseudonyms[("alice", "acme")])
    assert {a["acme"], a["riverside"]} <= member.parties  # her insurer and the provider that bills it
    assert not {i.ref for i in member.items} & {i.ref for i in at_riverside.items}


def test_the_observer_links_a_patient_who_acts_from_her_wallet(scenario):
    """What round 1 did, and a patient still can without --pairwise: granting from her own wallet names the
    grantee to anyone who knows her address. (Run last: it adds a transaction to the demo chain.)"""
    from medledger.scopes import DataClass, Purpose

    wallet = accounts[9]
    registry = web3.eth.contract(address=scenario.contracts["ConsentRegistry"], abi=_abi("ConsentRegistry"))
    registry.functions.grant(wallet.address, scenario.addresses["northside"], 1 << Purpose.TREAT,
                             1 << DataClass.LABS, 0, 0, b"\x00" * 32).transact({"from": wallet.address})
    linkage = _observer(scenario).link(wallet.address)
    assert scenario.addresses["northside"] in linkage.parties and linkage.items
