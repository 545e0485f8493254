"""The governance timelock (OpenZeppelin 5.4.0 `TimelockController`): schedule, execute and cancel governed calls.

In a deployment handed to a Safe (`medledger deploy --admin SAFE`) the timelock holds GOVERNOR_ROLE and
DEFAULT_ADMIN_ROLE of the CareRegistry and DEFAULT_ADMIN_ROLE of the ConsentRegistry and the ClaimEscrow.
The Safe is its proposer and canceller (a quorum of owners schedules), and anyone executes an operation
once its delay has passed. With a :class:`~medledger.safe.SafeProposer` as the signer, :meth:`Timelock.schedule`
and :meth:`Timelock.cancel` become Safe proposals like any other transaction.

An operation is (target, value 0, data, predecessor 0, salt). The salt is the occurrence number of the same
call (0, 1, 2, ...: a party reinstated twice needs two operations), so the same command finds its operation
again with no file to pass around: scheduling takes the first salt never used, executing and cancelling
the first pending one.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from . import deployments
from .accounts import Signer
from .chain import Chain, TxResult
from .contracts import CareRegistry, _Wrapper
from .errors import GovernanceError
from .messages import utc
from .scopes import Role

ZERO32 = b"\x00" * 32
#: Salts tried before giving up (a call scheduled this many times over is not a governance pattern).
MAX_OCCURRENCES = 256


class OperationState(IntEnum):
    """`TimelockController.OperationState`."""

    UNSET = 0
    WAITING = 1
    READY = 2
    DONE = 3


@dataclass(frozen=True)
class GovernedCall:
    """One call the timelock makes as governor, and what it does in words."""

    target: str
    data: bytes
    description: str
    value: int = 0

    @classmethod
    def of(cls, contract: Any, function: str, args: list[Any], description: str) -> GovernedCall:
        """`contract.function(*args)` (a web3 contract) as a governed call."""
        data = contract.encode_abi(function, args)
        return cls(to_checksum_address(contract.address), bytes.fromhex(data.removeprefix("0x")), description)

    def operation_id(self, salt: bytes) -> bytes:
        """`hashOperation(target, value, data, 0, salt)`, computed locally."""
        return keccak(abi_encode(["address", "uint256", "bytes", "bytes32", "bytes32"],
                                 [self.target, self.value, self.data, ZERO32, salt]))


@dataclass(frozen=True)
class Operation:
    """A governed call's operation in the timelock: its salt, id, state and when it becomes executable."""

    call: GovernedCall
    salt: bytes
    id: bytes
    state: OperationState
    ready_at: int  # Unix seconds (0: never scheduled; 1: done)

    @property
    def pending(self) -> bool:
        return self.state in (OperationState.WAITING, OperationState.READY)


class Timelock(_Wrapper):
    """The deployment's TimelockController."""

    NAME = "TimelockController"

    @classmethod
    def of_deployment(cls, chain: Chain, deployment: deployments.Deployment) -> Timelock:
        """The timelock `medledger deploy --admin SAFE` recorded for this deployment."""
        known = deployment.contracts.get(cls.NAME)
        if known is None or not chain.has_code(known.address):
            raise GovernanceError(f"this deployment on chain {chain.chain_id} has no governance timelock: "
                                  "hand governance over with `medledger deploy --admin SAFE` first")
        return cls(chain, known.address)

    def min_delay(self) -> int:
        return int(self._view(self.fn.getMinDelay()))

    def operation(self, call: GovernedCall, salt: bytes) -> Operation:
        op_id = call.operation_id(salt)
        state = OperationState(int(self._view(self.fn.getOperationState(op_id))))
        return Operation(call, salt, op_id, state, int(self._view(self.fn.getTimestamp(op_id))))

    def _occurrences(self, call: GovernedCall):
        for n in range(MAX_OCCURRENCES):
            yield self.operation(call, n.to_bytes(32, "big"))

    def next_free(self, call: GovernedCall) -> Operation:
        """The operation `schedule` would create: the first salt never used for this call."""
        for op in self._occurrences(call):
            if op.state == OperationState.UNSET:
                return op
        raise GovernanceError(f"{call.description} was scheduled {MAX_OCCURRENCES} times already")

    def current(self, call: GovernedCall) -> Operation:
        """The first operation of `call` not executed yet: the pending one, or else the one `schedule` would
        create (state UNSET)."""
        for op in self._occurrences(call):
            if op.state != OperationState.DONE:
                return op
        raise GovernanceError(f"{call.description} was executed {MAX_OCCURRENCES} times already")

    def pending(self, call: GovernedCall) -> Operation:
        """The scheduled, not yet executed operation of `call`; refused if there is none."""
        op = self.current(call)
        if not op.pending:
            raise GovernanceError(f"nothing to do: {call.description} is not scheduled in the timelock "
                                  f"{self.address} (schedule it first: `medledger --safe SAFE governance schedule`)")
        return op

    def schedule(self, signer: Signer, call: GovernedCall, delay: int | None = None) -> tuple[Operation, TxResult]:
        """Schedules `call` after `delay` seconds (default and minimum: the timelock's minimum delay)."""
        minimum = self.min_delay()
        delay = minimum if delay is None else delay
        if delay < minimum:
            raise GovernanceError(f"a delay of {delay} s is shorter than the timelock's minimum of {minimum} s")
        op = self.next_free(call)
        result = self._send(signer, self.fn.schedule(call.target, call.value, call.data, ZERO32, op.salt,
                                                              delay))
        return self.operation(call, op.salt), result

    def execute(self, signer: Signer, call: GovernedCall) -> tuple[Operation, TxResult]:
        """Executes the pending operation of `call`; refused, with its release date, while it waits."""
        op = self.pending(call)
        if op.state == OperationState.WAITING:
            raise GovernanceError(f"not ready: the timelock releases {call.description} at {utc(op.ready_at)}")
        result = self._send(signer, self.fn.execute(call.target, call.value, call.data, ZERO32, op.salt))
        return self.operation(call, op.salt), result

    def cancel(self, signer: Signer, call: GovernedCall) -> tuple[Operation, TxResult]:
        """Cancels the pending operation of `call` (the canceller: the governance Safe)."""
        op = self.pending(call)
        result = self._send(signer, self.fn.cancel(op.id))
        return self.operation(call, op.salt), result


# ------------------------------------------------------------------ the CareRegistry's governed calls


def reinstate(care: CareRegistry, account: str) -> GovernedCall:
    return GovernedCall.of(care.contract, "reinstate", [to_checksum_address(account)],
                           f"the reinstatement of {account}")


def register_arbiter(care: CareRegistry, account: str, metadata_hash: bytes) -> GovernedCall:
    return GovernedCall.of(care.contract, "register", [to_checksum_address(account), int(Role.ARBITER), metadata_hash],
                           f"the registration of arbiter {account}")


def assign_arbiter(care: CareRegistry, insurer: str, arbiter: str) -> GovernedCall:
    return GovernedCall.of(care.contract, "assignArbiter", [to_checksum_address(insurer), to_checksum_address(arbiter)],
                           f"the assignment of arbiter {arbiter} to insurer {insurer}")


def migrate(care: CareRegistry, account: str, new_account: str) -> GovernedCall:
    return GovernedCall.of(care.contract, "migrate", [to_checksum_address(account), to_checksum_address(new_account)],
                           f"the migration of {account} to {new_account}")


def _registrar_role(care: CareRegistry) -> bytes:
    return bytes(care.chain.call(care.fn.REGISTRAR_ROLE()))


def grant_registrar(care: CareRegistry, account: str) -> GovernedCall:
    return GovernedCall.of(care.contract, "grantRole", [_registrar_role(care), to_checksum_address(account)],
                           f"the appointment of registrar {account}")


def revoke_registrar(care: CareRegistry, account: str) -> GovernedCall:
    return GovernedCall.of(care.contract, "revokeRole", [_registrar_role(care), to_checksum_address(account)],
                           f"the revocation of registrar {account}")
