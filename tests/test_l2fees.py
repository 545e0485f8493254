"""The L2 cost model: FastLZ sizes against solady's reference, a known transaction's fee by hand from
the OP Fjord spec and Arbitrum's poster-fee rule, and signed bytes rebuilt from a real node."""
import json
import os
import random
import subprocess
from decimal import Decimal
from pathlib import Path

import brotli
from brownie import web3
from eth_account import Account

from medledger.chain import Chain
from medledger.config import load_settings
from medledger.l2fees import GWEI, FeeMarket, Network, arbitrum_l1_fee, flz_compress_len, op_l1_fee, tx_costs

ROOT = Path(__file__).resolve().parents[1]
# solady's own JavaScript LibZip: the same FastLZ as the Solidity LibZip that OP's GasPriceOracle calls.
SOLADY_JS = r"""
const {LibZip} = require(process.argv[1]);
const input = require("fs").readFileSync(0, "utf8").trim().split("\n");
console.log(JSON.stringify(input.map((l) => (LibZip.flzCompress("0x" + l.slice(1)).length - 2) / 2)));
"""


def solady_lengths(blobs: list[bytes]) -> list[int]:
    out = subprocess.run(["node", "-e", SOLADY_JS, str(ROOT / "node_modules/solady/js/solady.js")],
                         input="\n".join("x" + b.hex() for b in blobs), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_fastlz_length_equals_solady_reference_on_varied_inputs():
    rng = random.Random(7)
    blobs = []
    for n in [*range(0, 40), 64, 100, 131, 262, 263, 300, 1000, 5000, 20000]:
        blobs += [os.urandom(n), bytes(n), bytes(rng.choice(b"\x00\x01\xab") for _ in range(n)),
                  (os.urandom(7) * (n // 7 + 1))[:n]]
    assert [flz_compress_len(b) for b in blobs] == solady_lengths(blobs)


def known_transaction() -> bytes:
    """A fixed EIP-1559 transaction: a 4-byte selector and five ABI words, signed by a fixed key."""
    account = Account.from_key("0x" + "11" * 32)
    data = bytes.fromhex("a9059cbb") + (b"\x00" * 12 + bytes.fromhex("00" * 19 + "2a")) + (10**6).to_bytes(32, "big") \
        + bytes(32) * 2 + b"\x01" * 32
    tx = {"type": 2, "chainId": 10, "nonce": 7, "maxPriorityFeePerGas": 10**6, "maxFeePerGas": 10**8,
          "gas": 100_000, "to": "0x4200000000000000000000000000000000000042", "value": 0, "data": data}
    return bytes(account.sign_transaction(tx).raw_transaction)


def test_op_fjord_fee_of_a_known_transaction_matches_the_spec_by_hand():
    raw = known_transaction()
    fastlz = solady_lengths([raw])[0]
    assert flz_compress_len(raw) == fastlz
    market = FeeMarket(l1_base_fee=10 * GWEI, l1_blob_base_fee=1 * GWEI, op_base_fee_scalar=2_269,
                       op_blob_base_fee_scalar=1_055_762)
    # specs/protocol/fjord/predeploys.md, by hand:
    estimated_size = max(100_000_000, -42_585_600 + 836_500 * fastlz)
    l1_fee_scaled = 2_269 * 10_000_000_000 * 16 + 1_055_762 * 1_000_000_000
    assert op_l1_fee(raw, market) == estimated_size * l1_fee_scaled // 1_000_000_000_000
    # and the floor applies to a tiny transaction: 100 bytes' worth, whatever its compressed size.
    assert op_l1_fee(b"\x02" * 20, market) == 100_000_000 * l1_fee_scaled // 10**12


def test_arbitrum_poster_fee_is_16_units_per_brotli_byte():
    raw = known_transaction()
    market = FeeMarket(l1_blob_base_fee=3 * GWEI, arb_brotli_level=1)
    assert arbitrum_l1_fee(raw, market) == 16 * len(brotli.compress(raw, quality=1)) * 3 * GWEI
    assert arbitrum_l1_fee(raw, FeeMarket(arb_l1_price_per_unit=5)) == 16 * len(brotli.compress(raw, quality=1)) * 5


def test_tx_costs_split_execution_and_data_and_price_in_usd():
    raw = known_transaction()
    market = FeeMarket(eth_usd=Decimal(2000))
    costs = tx_costs(raw, 50_000, market)
    assert costs[Network.ETHEREUM].execution_wei == 50_000 * (market.l1_base_fee + market.l1_priority_fee)
    assert costs[Network.ETHEREUM].l1_data_wei == 0
    assert costs[Network.OP_STACK].execution_wei == 50_000 * market.op_l2_gas_price
    assert costs[Network.OP_STACK].l1_data_wei == op_l1_fee(raw, market)
    assert costs[Network.ETHEREUM].usd(market) == Decimal(costs[Network.ETHEREUM].total_wei) / 10**18 * 2000
    assert costs[Network.OP_STACK].total_wei < costs[Network.ETHEREUM].total_wei


def test_signed_bytes_are_rebuilt_from_a_real_node(accounts):
    chain = Chain(load_settings(rpc=web3.provider.endpoint_uri))
    sender = Account.from_key("0x" + "22" * 32)
    accounts[0].transfer(sender.address, 10**18)
    tx = {"type": 2, "chainId": web3.eth.chain_id, "nonce": 0, "maxPriorityFeePerGas": GWEI,
          "maxFeePerGas": 100 * GWEI, "gas": 60_000, "to": accounts[1].address, "value": 5, "data": b"\xca\xfe" * 9}
    raw = bytes(sender.sign_transaction(tx).raw_transaction)
    tx_hash = web3.eth.send_raw_transaction(raw)
    web3.eth.wait_for_transaction_receipt(tx_hash)
    assert chain.signed_transaction(tx_hash) == raw
