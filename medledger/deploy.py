"""Deploys and wires the MedLedger suite on any chain; `scripts/deploy.py` and `medledger deploy` call this.

Each contract is recorded in the deployments file as soon as it is mined. Re-running skips
every contract that is recorded and still has code, so an interrupted deploy resumes; on a
development chain that was reset (recorded addresses without code) the record is replaced.

With `admin` (the governance Safe) the deployment hands governance over: an OpenZeppelin
TimelockController whose proposer and canceller is `admin` (anyone executes once the delay has passed)
receives GOVERNOR_ROLE and DEFAULT_ADMIN_ROLE of the CareRegistry and DEFAULT_ADMIN_ROLE of the
ConsentRegistry and the ClaimEscrow; `admin` itself keeps the fast power, PAUSER_ROLE; the deployer
renounces everything. Every step checks the chain first, so re-running changes nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth_utils import to_checksum_address

from . import deployments
from .accounts import Signer
from .chain import Chain, TxResult
from .config import DEV_CHAIN_IDS
from .errors import ChainError, ConfigError, TokenError

#: Break-glass access is bounded by this maximum unless the operator chooses less (at most 72 h).
DEFAULT_MAX_BREAK_GLASS = 24 * 3600
#: The governance timelock's minimum delay: 2 days on real networks, 1 hour on development chains.
DEFAULT_TIMELOCK_DELAY = 2 * 86400
DEV_TIMELOCK_DELAY = 3600
ADMIN_ROLE = b"\x00" * 32
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class DeployOptions:
    """Choices an operator makes at deployment."""

    admin: str | None = None          # governance account (defaults to the deployer)
    registrar: str | None = None      # first credentialing authority (defaults to the deployer)
    token: str | None = None          # the stablecoin; a 6-decimal mock is deployed on dev chains if absent
    max_break_glass: int = DEFAULT_MAX_BREAK_GLASS
    timelock_delay: int | None = None  # seconds; None: the recorded timelock's, else the default for the chain


@dataclass(frozen=True)
class DeployStep:
    """What happened to one contract."""

    name: str
    address: str
    action: str  # "deployed" | "kept" | "recorded" (an external token)
    gas_used: int = 0


def deploy_suite(
    chain: Chain, signer: Signer, options: DeployOptions = DeployOptions(), log: Callable[[str], None] = lambda _: None
) -> list[DeployStep]:
    """Deploys whatever is missing of the suite and wires the roles; returns what happened."""
    chain.check_connected()
    path = chain.settings.deployments_path
    chain_id = chain.chain_id
    admin = to_checksum_address(options.admin or signer.address)
    registrar = to_checksum_address(options.registrar or signer.address)
    if not 0 < options.max_break_glass <= 72 * 3600:
        raise ConfigError("the maximum break-glass duration must be between 1 second and 72 hours")
    steps: list[DeployStep] = []
    recorded = deployments.load(path, chain_id)

    def ensure(name: str, artifact: str, *args: object) -> str:
        known = recorded.contracts.get(name)
        if known and chain.has_code(known.address):
            steps.append(DeployStep(name, known.address, "kept"))
            log(f"{name}: kept at {known.address}")
            return known.address
        _, result = chain.deploy(signer, artifact, *args)
        address = result.receipt["contractAddress"]
        deployments.record(path, chain_id, name, deployments.Deployed(address, result.block_number, result.tx_hash))
        steps.append(DeployStep(name, address, "deployed", result.gas_used))
        log(f"{name}: deployed at {address} (gas {result.gas_used:,})")
        return address

    token = _token(chain, recorded, options.token, ensure, steps, log)
    care = ensure("CareRegistry", "CareRegistry", signer.address, registrar)
    consent = ensure("ConsentRegistry", "ConsentRegistry", signer.address, care, options.max_break_glass)
    records = ensure("RecordRegistry", "RecordRegistry", care, consent)
    escrow = ensure("ClaimEscrow", "ClaimEscrow", care, consent, records, token, signer.address)

    addresses = {"CareRegistry": care, "ConsentRegistry": consent, "ClaimEscrow": escrow}
    _wire_registrar(chain, signer, care, registrar, log)
    if admin.lower() != signer.address.lower():
        if options.timelock_delay is not None and options.timelock_delay < 0:
            raise ConfigError("the timelock delay cannot be negative")
        timelock = _timelock(chain, recorded, admin, options.timelock_delay, ensure)
        _hand_over(chain, signer, addresses, admin, timelock, log)
    return steps


def _escrow_token(chain: Chain, recorded: deployments.Deployment) -> str | None:
    """The token of the recorded ClaimEscrow, if it is deployed on this chain."""
    known = recorded.contracts.get("ClaimEscrow")
    if known is None or not chain.has_code(known.address):
        return None
    return to_checksum_address(chain.call(chain.contract("ClaimEscrow", known.address).functions.token()))


def _recorded_token(chain: Chain, recorded: deployments.Deployment) -> str | None:
    """The deployment's token: the recorded Stablecoin if it has code, else the live escrow's token."""
    known = recorded.contracts.get("Stablecoin")
    if known is not None and chain.has_code(known.address):
        return to_checksum_address(known.address)
    return _escrow_token(chain, recorded)


def _one_token(chain: Chain, current: str, wanted: str) -> TokenError:
    return TokenError(f"this deployment on chain {chain.chain_id} already uses token {current}; one token per "
                      f"deployment: run without --token (or with --token {current}), or deploy a new suite with "
                      f"another --deployments file to use {wanted}")


def _token(chain: Chain, recorded: deployments.Deployment, requested: str | None,
           ensure: Callable[..., str], steps: list[DeployStep], log: Callable[[str], None]) -> str:
    """The deployment's one stablecoin: the recorded one, the --token one (recorded as external),
    or a new mock on a development chain. A second, different token is refused."""
    current = _recorded_token(chain, recorded)
    escrow_token = _escrow_token(chain, recorded)
    if requested is not None:
        wanted = to_checksum_address(requested)
        if not chain.has_code(wanted):
            raise TokenError(f"--token {wanted} has no contract on chain {chain.chain_id}")
        for other in (current, escrow_token):
            if other is not None and other != wanted:
                raise _one_token(chain, other, wanted)
        if current is None or "Stablecoin" not in recorded.contracts or \
                to_checksum_address(recorded.contracts["Stablecoin"].address) != wanted:
            deployments.record(chain.settings.deployments_path, chain.chain_id, "Stablecoin",
                               deployments.Deployed(wanted, 0, "", external=True))
            steps.append(DeployStep("Stablecoin", wanted, "recorded"))
            log(f"Stablecoin: external token {wanted} recorded")
        else:
            steps.append(DeployStep("Stablecoin", wanted, "kept"))
            log(f"Stablecoin: kept at {wanted}")
        return wanted
    if chain.chain_id not in DEV_CHAIN_IDS:  # live networks name their token every time: no surprises
        hint = f"; this deployment records {current}" if current else ""
        raise ConfigError(f"on a live network pass the stablecoin address (--token 0x...){hint}")
    if current is not None and "Stablecoin" not in recorded.contracts:
        # A deployment recorded before tokens were: the escrow's token becomes the recorded one.
        deployments.record(chain.settings.deployments_path, chain.chain_id, "Stablecoin",
                           deployments.Deployed(current, 0, "", external=True))
        steps.append(DeployStep("Stablecoin", current, "recorded"))
        return current
    return ensure("Stablecoin", "MockStablecoin")


def deploy_mock_token(chain: Chain, signer: Signer) -> tuple[str, TxResult]:
    """Deploys the 6-decimal MockStablecoin and records it as the deployment's token (then `deploy` uses it).

    Refused (TokenError) when the deployment already has a token: one token per deployment.
    """
    chain.check_connected()
    recorded = deployments.load(chain.settings.deployments_path, chain.chain_id)
    current = _recorded_token(chain, recorded)
    if current is not None:
        raise TokenError(f"this deployment on chain {chain.chain_id} already uses token {current}; one token per "
                         f"deployment: `medledger dev mint` mints it if it is the development mock")
    contract, result = chain.deploy(signer, "MockStablecoin")
    deployments.record(chain.settings.deployments_path, chain.chain_id, "Stablecoin",
                       deployments.Deployed(contract.address, result.block_number, result.tx_hash))
    return contract.address, result


def require_mock_token(chain: Chain, deployment: deployments.Deployment) -> str:
    """The deployment's token if it is the development mock MedLedger deployed (anyone may mint it).

    Refused (TokenError) for an external token: minting would need its issuer, and a second mock
    would be a token the deployment never uses.
    """
    escrow = _escrow_token(chain, deployment)
    known = deployment.contracts.get("Stablecoin")
    if known is None or known.external or (escrow is not None and to_checksum_address(known.address) != escrow):
        token = escrow or (known.address if known else "(none recorded)")
        raise TokenError(f"this deployment's token {token} is an external token, not the development mock: "
                         f"`medledger dev mint` cannot mint it (fund accounts from the token's issuer or a faucet)")
    return to_checksum_address(known.address)


def _wire_registrar(chain: Chain, signer: Signer, care_address: str, registrar: str,
                    log: Callable[[str], None]) -> None:
    """Appoints `registrar` (the deployer, as governor, can; it cannot appoint itself: the constructor did
    that for a deployer-registrar), and a deployer that is not the named registrar renounces the role."""
    care = chain.contract("CareRegistry", care_address)
    role = chain.call(care.functions.REGISTRAR_ROLE())
    holds = chain.call(care.functions.hasRole(role, registrar))
    if not holds and chain.call(care.functions.hasRole(chain.call(care.functions.GOVERNOR_ROLE()), signer.address)):
        if registrar.lower() == signer.address.lower():
            raise ConfigError(f"the deployer {registrar} cannot appoint itself registrar of CareRegistry "
                              f"{care_address}: no account grants itself a role; name another --registrar, or let "
                              "governance appoint it")
        chain.transact(signer, care.functions.grantRole(role, registrar))
        log(f"CareRegistry: registrar {registrar} appointed")
        holds = True
    deployer_holds = chain.call(care.functions.hasRole(role, signer.address))
    if registrar.lower() != signer.address.lower() and holds and deployer_holds:
        chain.transact(signer, care.functions.renounceRole(role, signer.address))
        log(f"CareRegistry: the deployer renounced its registrar role to {registrar}")


def default_timelock_delay(chain: Chain) -> int:
    """The timelock delay when none is chosen: 2 days, 1 hour on a development chain."""
    return DEV_TIMELOCK_DELAY if chain.chain_id in DEV_CHAIN_IDS else DEFAULT_TIMELOCK_DELAY


def _timelock(chain: Chain, recorded: deployments.Deployment, safe: str, delay: int | None,
              ensure: Callable[..., str]) -> str:
    """The governance TimelockController of `safe`: the recorded one (checked), or a new one."""
    known = recorded.contracts.get("TimelockController")
    if known is not None and chain.has_code(known.address):
        timelock = chain.contract("TimelockController", known.address)
        if not chain.call(timelock.functions.hasRole(chain.call(timelock.functions.PROPOSER_ROLE()), safe)):
            raise ConfigError(f"the recorded TimelockController {known.address} takes proposals from another account, "
                              f"not {safe}: change its proposers through the timelock itself")
        current = int(chain.call(timelock.functions.getMinDelay()))
        if delay is not None and delay != current:
            raise ConfigError(f"the recorded TimelockController {known.address} has a minimum delay of {current} s, "
                              f"not {delay} s: change it with a timelocked updateDelay, or re-run without "
                              "--timelock-delay")
    if delay is None:
        delay = default_timelock_delay(chain)
    # Proposer and canceller: the Safe; executor: anyone (address 0) once the delay has passed; no admin
    # (the timelock administers itself).
    return to_checksum_address(ensure("TimelockController", "TimelockController", delay, [safe], [ZERO], ZERO))


def _hand_over(chain: Chain, signer: Signer, addresses: dict[str, str], safe: str, timelock: str,
               log: Callable[[str], None]) -> None:
    """Moves each governed role to the timelock and the pauser role to the Safe; the deployer renounces its
    own (DEFAULT_ADMIN_ROLE last, as it guards the others). Each step is checked first: re-running sends
    nothing."""
    for name, address in addresses.items():
        contract = chain.contract(name, address)
        names = {i.get("name") for i in contract.abi}
        holders = [(chain.call(contract.functions.PAUSER_ROLE()), safe)] if "PAUSER_ROLE" in names else []
        if "GOVERNOR_ROLE" in names:
            holders.append((chain.call(contract.functions.GOVERNOR_ROLE()), timelock))
        holders.append((ADMIN_ROLE, timelock))
        for role, holder in holders:
            if not chain.call(contract.functions.hasRole(role, holder)):
                chain.transact(signer, contract.functions.grantRole(role, holder))
            if chain.call(contract.functions.hasRole(role, signer.address)):
                chain.transact(signer, contract.functions.renounceRole(role, signer.address))
        log(f"{name}: governance handed to the timelock {timelock}"
            + (f", pausing to {safe}" if "PAUSER_ROLE" in names else ""))


@dataclass(frozen=True)
class CostLine:
    """One deployment transaction's estimated cost at the current fee market."""

    name: str
    gas: int
    signed_bytes: int
    fee_wei: int          # execution at maxFee (an upper bound), plus the L2's L1 data fee if any
    l1_data_wei: int


def preview_suite(chain: Chain, deployer: str, options: DeployOptions = DeployOptions(),
                  fee_model: str = "ethereum") -> list[CostLine]:
    """A dry run: the gas each contract creation would take (eth_estimateGas, nothing sent) priced at the
    node's current fees; on an L2 (`fee_model` "op-stack" or "arbitrum") plus the L1 data fee of a signed
    transaction of the same size (`medledger.l2fees`, stated default scalars)."""
    from eth_account import Account
    from web3.exceptions import ContractLogicError, Web3RPCError

    from .l2fees import FeeMarket, arbitrum_l1_fee, op_l1_fee

    chain.check_connected()
    placeholder = "0x" + "11" * 20   # later constructors take earlier addresses: any address estimates the same
    fees = chain.fees()
    plan: list[tuple[str, str, tuple]] = []
    if options.token is None:
        plan.append(("Stablecoin", "MockStablecoin", ()))
    elif not chain.has_code(options.token):
        raise ConfigError(f"no contract at --token {options.token} on chain {chain.chain_id}")
    plan += [("CareRegistry", "CareRegistry", (deployer, deployer)),
             ("ConsentRegistry", "ConsentRegistry", (deployer, placeholder, options.max_break_glass)),
             ("RecordRegistry", "RecordRegistry", (placeholder, placeholder))]
    if options.admin is not None:  # the governance timelock of the hand-over
        delay = default_timelock_delay(chain) if options.timelock_delay is None else options.timelock_delay
        plan.append(("TimelockController", "TimelockController", (delay, [options.admin], [ZERO], ZERO)))
    # ClaimEscrow's constructor checks that the token has code: it can be estimated only against a real one.
    if options.token is not None:
        plan.append(("ClaimEscrow", "ClaimEscrow", (placeholder, placeholder, placeholder, options.token, deployer)))
    market = FeeMarket(l1_base_fee=max(fees["maxFeePerGas"] - fees["maxPriorityFeePerGas"], 1))
    stand_in = Account.create()   # signs a same-sized transaction, so the L1 data fee sees the real size
    lines = []
    for name, artifact, args in plan:
        art = chain.artifact(artifact)
        data = chain.w3.eth.contract(abi=art.abi, bytecode=art.bytecode).constructor(*args).data_in_transaction
        try:
            gas = int(chain.w3.eth.estimate_gas({"from": deployer, "data": data}))
        except (ContractLogicError, Web3RPCError) as exc:
            raise ChainError(f"the node cannot estimate the {name} deployment: {exc}") from None
        raw = bytes(stand_in.sign_transaction({"type": 2, "chainId": chain.chain_id, "nonce": 0, "gas": gas,
                                               "data": data, "value": 0, **fees}).raw_transaction)
        l1 = {"op-stack": op_l1_fee, "arbitrum": arbitrum_l1_fee}.get(fee_model)
        data_fee = l1(raw, market) if l1 else 0
        lines.append(CostLine(name, gas, len(raw), gas * fees["maxFeePerGas"] + data_fee, data_fee))
    return lines
