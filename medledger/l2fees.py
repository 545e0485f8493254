"""What one MedLedger transaction costs on Ethereum L1, an OP-stack L2 and Arbitrum One.

An L2 runs the same EVM, so a transaction's *execution* gas is the one measured on the local chain.
The L2 adds a *data fee* for posting the transaction to L1:

- **OP stack after Fjord** (OP Mainnet, Base, …; `ethereum-optimism/specs`, fjord/predeploys.md,
  ``GasPriceOracle.getL1Fee``)::

      fastlzSize     = len(FastLZ(signed tx))            # solady LibZip.flzCompress, as GasPriceOracle
      estimatedSize  = max(100e6, -42_585_600 + 836_500 * fastlzSize)   # bytes * 1e6
      l1FeeScaled    = baseFeeScalar * l1BaseFee * 16 + blobBaseFeeScalar * blobBaseFee
      l1Fee          = estimatedSize * l1FeeScaled / 1e12                # wei

- **Arbitrum One (Nitro)**: the poster fee is ``l1PricePerUnit * 16 * brotliSize(signed tx)``
  (ArbOS ``GetPosterUnitsWithoutCache``: brotli at the chain's compression level, 16 units a byte),
  charged as extra L2 gas at the L2 base fee. Nitro's brotli level and the price per unit are inputs
  here; the defaults are documented in docs/OPERATIONS.md.

Nothing here talks to a network: every price is an input with a documented default
(:class:`FeeMarket`), so an operator can re-run the report at today's prices.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

import brotli

GWEI = 10**9
WEI_PER_ETH = Decimal(10**18)

#: Fjord's linear regression of compressed size (OP spec, fjord/predeploys.md).
FJORD_INTERCEPT = -42_585_600
FJORD_FASTLZ_COEF = 836_500
FJORD_MIN_TX_SIZE_SCALED = 100 * 10**6


def _u24(data: bytes, i: int) -> int:
    return data[i] | (data[i + 1] << 8) | (data[i + 2] << 16)


def _hash(x: int) -> int:
    # 32-bit multiplicative hash, as LibZip (bits 19..31 of 2654435769 * x).
    return ((2654435769 * x) >> 19) & 8191


def flz_compress_len(data: bytes) -> int:
    """The length of solady's ``LibZip.flzCompress(data)`` (FastLZ level 1), which OP's
    ``GasPriceOracle`` uses for the Fjord data fee. A port of the reference that counts output bytes
    instead of writing them; a test checks it against the Solidity library on chain."""
    n = len(data)
    b = n - 4  # the last four bytes are always literals
    table: dict[int, int] = {}
    out = 0
    anchor, i = 0, 2

    def literals(run: int) -> int:
        # 32-byte literal blocks each cost 1 control byte + 32, the rest 1 + run.
        full, rest = divmod(run, 32)
        return full * 33 + (rest + 1 if rest else 0)

    while i < b - 9:
        while True:
            seq = _u24(data, i)
            h = _hash(seq)
            ref = table.get(h, 0)
            table[h] = i
            distance = i - ref
            candidate = _u24(data, ref) if distance < 8192 else 0x1000000
            if i >= b - 9:
                break
            i += 1
            if seq == candidate:
                break
        if i >= b - 9:
            break
        i -= 1
        if i > anchor:
            out += literals(i - anchor)
        # As the reference loop: the count includes the first mismatching byte, if any.
        length, p, q = 0, ref + 3, i + 3
        limit = b - q
        while length < limit:
            length += 1
            if data[p + length - 1] != data[q + length - 1]:
                break
        i += length
        distance -= 1
        while length > 262:
            out += 3
            length -= 262
        out += 2 if length < 7 else 3
        table[_hash(_u24(data, i))] = i
        i += 1
        table[_hash(_u24(data, i))] = i
        i += 1
        anchor = i
    return out + literals(b + 4 - anchor)


class Network(str, Enum):
    """Where an operator may run the suite."""

    ETHEREUM = "ethereum"
    OP_STACK = "op-stack"
    ARBITRUM = "arbitrum"


@dataclass(frozen=True)
class FeeMarket:
    """Prices behind a cost report. The defaults are stated levels, not live quotes: pass today's.

    - Ethereum L1: 10 gwei base fee, 1 gwei tip.
    - OP stack (Base mainnet's published Ecotone/Fjord scalars): ``baseFeeScalar`` 2,269,
      ``blobBaseFeeScalar`` 1,055,762; L1 blob base fee 1 gwei (a busy level; it is often far lower);
      L2 base fee 0.01 gwei.
    - Arbitrum One: L2 base fee 0.01 gwei; brotli level 1; L1 price per unit = the L1 blob base fee
      (an assumption for the blob-posting era: read the live figure from
      ``ArbGasInfo.getL1BaseFeeEstimate()`` and pass it as ``arb_l1_price_per_unit``).
    - ETH at 3,000 USD.
    """

    l1_base_fee: int = 10 * GWEI
    l1_priority_fee: int = 1 * GWEI
    l1_blob_base_fee: int = 1 * GWEI
    op_base_fee_scalar: int = 2_269
    op_blob_base_fee_scalar: int = 1_055_762
    op_l2_gas_price: int = GWEI // 100
    arb_l2_gas_price: int = GWEI // 100
    arb_l1_price_per_unit: int | None = None   # default: the L1 blob base fee
    arb_brotli_level: int = 1
    eth_usd: Decimal = Decimal(3000)


#: The stated defaults, as one value.
DEFAULT_MARKET = FeeMarket()


@dataclass(frozen=True)
class TxCost:
    """One transaction's fee on one network, in wei, split into execution and L1 data."""

    network: Network
    execution_wei: int
    l1_data_wei: int

    @property
    def total_wei(self) -> int:
        return self.execution_wei + self.l1_data_wei

    def usd(self, market: FeeMarket) -> Decimal:
        return Decimal(self.total_wei) / WEI_PER_ETH * market.eth_usd


def op_l1_fee(signed_tx: bytes, market: FeeMarket) -> int:
    """OP-stack L1 data fee (wei) of a signed transaction after Fjord."""
    fastlz = flz_compress_len(signed_tx)
    estimated = max(FJORD_MIN_TX_SIZE_SCALED, FJORD_INTERCEPT + FJORD_FASTLZ_COEF * fastlz)
    scaled = (market.op_base_fee_scalar * market.l1_base_fee * 16
              + market.op_blob_base_fee_scalar * market.l1_blob_base_fee)
    return estimated * scaled // 10**12


def arbitrum_l1_fee(signed_tx: bytes, market: FeeMarket) -> int:
    """Arbitrum's poster fee (wei): 16 units per brotli-compressed byte at the L1 price per unit."""
    units = 16 * len(brotli.compress(signed_tx, quality=market.arb_brotli_level))
    price = market.arb_l1_price_per_unit if market.arb_l1_price_per_unit is not None else market.l1_blob_base_fee
    return units * price


def tx_costs(signed_tx: bytes, gas_used: int, market: FeeMarket = DEFAULT_MARKET) -> dict[Network, TxCost]:
    """The cost of one transaction on each network, from its signed bytes and its execution gas."""
    return {
        Network.ETHEREUM: TxCost(Network.ETHEREUM, gas_used * (market.l1_base_fee + market.l1_priority_fee), 0),
        Network.OP_STACK: TxCost(Network.OP_STACK, gas_used * market.op_l2_gas_price, op_l1_fee(signed_tx, market)),
        Network.ARBITRUM: TxCost(Network.ARBITRUM, gas_used * market.arb_l2_gas_price,
                                 arbitrum_l1_fee(signed_tx, market)),
    }
