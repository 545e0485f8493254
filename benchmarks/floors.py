"""Gas floors: the EVM prices (Shanghai), what each measured operation cannot avoid, and the row
that puts a receipt's gasUsed next to its target and floor.

A floor is 21,000 + the calldata of the actual transaction input (16 gas per non-zero byte, 4 per
zero byte) + the state access the operation cannot avoid whatever the implementation (EIP-2929/3529
prices). Events, memory, ABI decoding and the implementation's own book-keeping (locks, compact
tables) are the distance between the floor and the measurement.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medledger.chain import Chain, TxResult

# ------------------------------------------------------------------ EVM prices (Shanghai)
G_TX = 21_000
G_NEW_SLOT = 22_100      # SSTORE 0 -> x on a cold slot (20,000 + 2,100 cold access)
G_SLOT_UPDATE = 5_000    # SSTORE x -> y (x != 0) on a cold slot (2,900 + 2,100)
G_COLD_READ = 2_100      # SLOAD of a cold slot
G_COLD_ACCOUNT = 2_600   # first call to another contract in the transaction
G_ECRECOVER = 3_000      # the precompile (precompiles are always warm)
R_CLEAR = 4_800          # refund for x -> 0 (EIP-3529)
R_SET_AND_CLEAR = 19_900  # refund for 0 -> x -> 0 within one transaction


def calldata_gas(data: bytes) -> int:
    """Intrinsic calldata cost: 16 gas per non-zero byte, 4 per zero byte."""
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


@dataclass(frozen=True)
class Cost:
    """One unavoidable state access of an operation: its kind, what it touches, its price."""

    kind: str  # "new slot" | "slot update" | "slot cleared" | "cold read" | "cold call" | "precompile"
    what: str
    gas: int


def new_slot(what: str) -> Cost:
    return Cost("new slot", what, G_NEW_SLOT)


def update(what: str) -> Cost:
    return Cost("slot update", what, G_SLOT_UPDATE)


def cleared(what: str) -> Cost:
    return Cost("slot cleared", what, G_SLOT_UPDATE)


def read(what: str) -> Cost:
    return Cost("cold read", what, G_COLD_READ)


def call(contract: str) -> Cost:
    return Cost("cold call", contract, G_COLD_ACCOUNT)


ECRECOVER = Cost("precompile", "ecrecover", G_ECRECOVER)


@dataclass(frozen=True)
class Floor:
    """The state access an operation cannot avoid, plus the refunds it earns."""

    costs: tuple[Cost, ...]
    refund: int = 0

    def total(self, calldata: int) -> int:
        """21,000 + calldata + the costs, less the refund (capped at a fifth of the gas, EIP-3529)."""
        before = G_TX + calldata + sum(c.gas for c in self.costs)
        return before - min(self.refund, before // 5)

    def describe(self) -> str:
        """Every cost with its price (for reports/gas-detail.json)."""
        text = "; ".join(f"{c.kind}: {c.what} {c.gas:,}" for c in self.costs)
        return text + (f"; refund -{self.refund:,}" if self.refund else "")

    def summary(self) -> str:
        """The costs grouped by kind, e.g. `2 cold reads 4,200 (consent, party)`, for the table."""
        groups: dict[str, list[Cost]] = {}
        for c in self.costs:
            groups.setdefault(c.kind, []).append(c)
        parts = []
        for kind, costs in groups.items():
            label = kind if len(costs) == 1 else f"{len(costs)} {_PLURAL[kind]}"
            parts.append(f"{label} {sum(c.gas for c in costs):,} ({', '.join(c.what for c in costs)})")
        return "; ".join(parts) + (f"; refund -{self.refund:,}" if self.refund else "")


_PLURAL = {"new slot": "new slots", "slot update": "slot updates", "slot cleared": "slots cleared",
           "cold read": "cold reads", "cold call": "cold calls", "precompile": "precompiles"}


@dataclass(frozen=True)
class OpSpec:
    """What one measured operation is, its target (None: no target) and its floor."""

    case: str
    target: int | None
    floor: Floor


_ANCHOR_FLOOR = Floor((new_slot("record head"), read("pair consent"), read("author party"),
                       call("ConsentRegistry"), call("CareRegistry")))
_SUBMIT_COSTS = (new_slot("claim"), new_slot("record+service key"), read("provider party"), read("enrolment"),
                 read("insurer consent"), read("insurer party"), read("record version"), read("provider consent"),
                 read("insurer terms"), call("CareRegistry"), call("ConsentRegistry"), call("RecordRegistry"))
_PAY_COSTS = (update("insurer account"), update("provider account"))

#: Every measured operation, in the order `GasBench.run` measures them. Slots named "token: ..." are
#: the stablecoin's (balances, allowance, permit nonce); the others the called contract's own.
SPECS: dict[str, OpSpec] = {
    "registry.addProvider": OpSpec(
        "registrar registers the suite's first party (a provider)", None,
        Floor((new_slot("party record"), new_slot("party id -> account"), new_slot("party count, first party"),
               read("registrar role")))),
    # Issue 17: a custodian publishes its gateway origin (30 bytes: a short string, one slot).
    "registry.setGatewayEndpoint": OpSpec(
        "an active provider publishes its gateway endpoint (a 30-byte origin) for the first time", None,
        Floor((new_slot("endpoint (length and bytes)"), read("caller party")))),
    "consent.grant": OpSpec(
        "patient's first grant to this grantee", 55_000,
        Floor((new_slot("pair consent"),))),
    # Interface v2 (issue 13, finding 8): the pair's signature nonce lives in the consent slot. A revoke
    # therefore updates the slot (keeping the bumped nonce) instead of clearing it, and earns no refund;
    # a signed grant no longer writes a separate per-signer nonce slot.
    "consent.revoke": OpSpec(
        "patient revokes a live grant (the slot keeps the pair's bumped signature nonce: no refund)", 32_000,
        Floor((update("pair consent"),))),
    "consent.grantBySig": OpSpec(
        "EOA patient's first signed grant, relayed by a third party", 85_000,
        Floor((new_slot("pair consent + nonce"), ECRECOVER))),
    # The wallet checks its owner's signature itself (an ecrecover inside isValidSignature): work no
    # ERC-1271 grant can avoid, so it is part of the floor (it was slack before the nonce slot went).
    "consent.grantBySig.erc1271": OpSpec(
        "ERC-1271 wallet patient's first signed grant, relayed", None,
        Floor((new_slot("pair consent + nonce"), call("wallet"), ECRECOVER,
               Cost("precompile", "ecrecover in the wallet", G_ECRECOVER)))),
    "record.anchor": OpSpec("anchor by an enrolled provider with TREAT consent", 60_000, _ANCHOR_FLOOR),
    # Interface v2 (issue 13, finding 11): amending needs live TREAT consent, the author's included, so
    # amend asks the ConsentRegistry (pair consent read + cold call) like anchor does.
    "record.amend": OpSpec(
        "the author, still consented, amends its record (v1 -> v2)", None,
        Floor((new_slot("superseded version"), update("record head"), read("pair consent"), read("author party"),
               call("ConsentRegistry"), call("CareRegistry")))),
    "record.logAccess": OpSpec(
        "consented provider logs a TREAT access", None,
        Floor((read("record head"), read("pair consent"), read("accessor party"), call("ConsentRegistry"),
               call("CareRegistry")))),
    "record.anchorBatch1000": OpSpec(
        "one Merkle batch of 1,000 records", 70_000,
        Floor((new_slot("batch"), read("submitter party"), call("CareRegistry")))),
    "escrow.depositWithPermit": OpSpec(
        "insurer's first deposit, EIP-2612 permit in the same tx (the SDK's path)", None,
        # ClaimEscrow v2 (issue 13): a deposit reads the insurer's deemed pool, which it fills first.
        Floor((new_slot("insurer account"), new_slot("token: escrow balance"), new_slot("token: permit nonce"),
               Cost("new slot", "token: allowance 0->x->0", G_NEW_SLOT + 100), update("token: insurer balance"),
               read("insurer party"), read("deemed pool"), call("token"), call("CareRegistry"), ECRECOVER),
              refund=R_SET_AND_CLEAR)),
    "escrow.deposit": OpSpec(
        "insurer's later deposit after approve()", None,
        Floor((update("insurer account"), update("token: insurer balance"), update("token: escrow balance"),
               cleared("token: allowance"), read("insurer party"), read("deemed pool"), call("token"),
               call("CareRegistry")), refund=R_CLEAR)),
    # Issue 13: a submission also checks the insurer's payment consent for the cited record's class.
    "claim.submit": OpSpec("one-record claim, established provider, manual adjudication", 125_000,
                           Floor(_SUBMIT_COSTS)),
    "claim.approve": OpSpec(
        "insurer approves in full, credited to the provider's owed balance", 60_000,
        Floor((update("claim"), *_PAY_COSTS, read("coverage"), read("insurer party"), call("CareRegistry")))),
    "claim.withdraw": OpSpec(
        "provider withdraws part of what it is owed", 60_000,
        Floor((update("provider account"), update("token: escrow balance"), update("token: provider balance"),
               read("provider party"), call("CareRegistry"), call("token")))),
    "claim.approvePartial": OpSpec(
        "insurer approves part, the rest encumbered for dispute", None,
        Floor((update("claim"), *_PAY_COSTS, read("coverage"), read("insurer party"), read("insurer terms"),
               call("CareRegistry")))),
    # ClaimEscrow v2: a dispute moves no money and is open to a suspended provider. ClaimEscrow v3 (issue 18,
    # account migration): claims are keyed by the provider's home account and a migrated account must be
    # refused, so a dispute asks the CareRegistry (`resolve`) for the caller's party record.
    "claim.dispute": OpSpec(
        "provider disputes the contested amount", None,
        Floor((update("claim"), read("provider party"), call("CareRegistry")))),
    # Issue 18: only the arbiter assigned to the claim's insurer rules, so the CareRegistry also reads the
    # insurer's arbiter assignment (one more cold slot) before the arbiter's party record.
    "claim.resolve": OpSpec(
        "the insurer's assigned arbiter awards part of the contested amount", None,
        Floor((update("claim"), *_PAY_COSTS, read("arbiter assignment"), read("arbiter party"), read("coverage"),
               call("CareRegistry")))),
    "claim.finalizeDeemed": OpSpec(
        "anyone finalizes an unadjudicated claim after the prompt-pay window", None,
        Floor((update("claim"), *_PAY_COSTS, read("coverage"), read("provider party"), call("CareRegistry")))),
    # ClaimEscrow v2: auto-approval counts against the (provider, coverage) velocity cap, one slot that
    # the pair's first automatic approval creates (one-off) and later ones update (measured here).
    "claim.submitAutoPaid": OpSpec(
        "claim auto-approved at submission and pushed to the provider (opted in), not the pair's first", 165_000,
        Floor((*_SUBMIT_COSTS[:2], *_PAY_COSTS, update("auto velocity"), update("token: escrow balance"),
               update("token: provider balance"), *_SUBMIT_COSTS[2:], call("token")))),
}


@dataclass(frozen=True)
class GasRow:
    """One measured operation: the receipt's gasUsed next to its target and floor."""

    op: str
    gas: int
    tx_hash: str
    calldata_bytes: int
    calldata_gas: int
    spec: OpSpec
    #: The signed transaction, kept at measurement (the bench reverts snapshots, so it may be gone
    #: later): the L2 cost report prices its size.
    signed_tx: bytes = b""

    @property
    def target(self) -> int | None:
        return self.spec.target

    @property
    def passed(self) -> bool | None:
        return None if self.spec.target is None else self.gas <= self.spec.target

    @property
    def floor(self) -> int:
        return self.spec.floor.total(self.calldata_gas)

    @property
    def distance(self) -> int:
        return self.gas - self.floor

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "case": self.spec.case, "gas": self.gas, "target": self.target, "pass": self.passed,
                "floor": self.floor, "distance": self.distance, "calldata_bytes": self.calldata_bytes,
                "calldata_gas": self.calldata_gas, "floor_basis": self.spec.floor.describe(), "tx": self.tx_hash}


def measure(chain: Chain, op: str, result: TxResult) -> GasRow:
    """The gas row of `op` from a mined transaction: gasUsed from its receipt, calldata from its input."""
    receipt = chain.w3.eth.get_transaction_receipt(result.tx_hash)
    data = bytes(chain.w3.eth.get_transaction(result.tx_hash)["input"])
    return GasRow(op, int(receipt["gasUsed"]), result.tx_hash, len(data), calldata_gas(data), SPECS[op],
                  chain.signed_transaction(result.tx_hash))
