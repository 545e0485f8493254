"""The bench's gas machinery (what `make bench` reports) measures real receipts. No timings here."""
from brownie import web3

from benchmarks import floors
from medledger.chain import Chain
from medledger.config import load_settings
from medledger.contracts import ConsentRegistry
from medledger.testing import dev_signer

TREAT, LABS = 0, 4


def test_measure_reports_the_receipt_gas_of_a_real_grant(consent, patient, provider):
    chain = Chain(load_settings(rpc=web3.provider.endpoint_uri))
    sdk = ConsentRegistry(chain, consent.address)
    signer = dev_signer(6)  # the test chain's accounts[6], derived from the development mnemonic
    assert signer.address == patient.address

    row = floors.measure(chain, "consent.grant", sdk.grant(signer, patient.address, provider.address,
                                                           1 << TREAT, 1 << LABS))

    receipt = web3.eth.get_transaction_receipt(row.tx_hash)
    assert receipt["status"] == 1 and receipt["from"] == patient.address and receipt["to"] == consent.address
    assert row.gas == receipt["gasUsed"]
    assert consent.consentOf(patient, provider)[:2] == (1 << TREAT, 1 << LABS)  # the grant really happened
    data = bytes(web3.eth.get_transaction(row.tx_hash)["input"])
    assert row.calldata_bytes == len(data) == 4 + 7 * 32
    assert row.calldata_gas == sum(16 if b else 4 for b in data)
    assert row.floor == 21_000 + row.calldata_gas + 22_100  # one new slot: the pair's consent
    assert row.floor < row.gas and row.distance == row.gas - row.floor
    assert row.target == 55_000 and row.passed is (row.gas <= 55_000)


def test_floor_applies_the_refund_cap():
    revoke = floors.Floor((floors.cleared("pair consent"),), refund=floors.R_CLEAR)
    assert revoke.total(800) == 21_000 + 800 + 5_000 - 4_800
    # The refund is capped at a fifth of the gas before refunds (EIP-3529).
    big = floors.Floor((floors.read("x"),), refund=50_000)
    assert big.total(0) == 23_100 - 23_100 // 5
    assert floors.calldata_gas(b"\x00\x01\x00\xff") == 4 + 16 + 4 + 16
