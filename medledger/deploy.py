"""Deploys and wires the MedLedger suite on any chain; `scripts/deploy.py` and `medledger deploy` call this.

Each contract is recorded in the deployments file as soon as it is mined. Re-running skips
every contract that is recorded and still has code, so an interrupted deploy resumes; on a
development chain that was reset (recorded addresses without code) the record is replaced.
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


@dataclass(frozen=True)
class DeployOptions:
    """Choices an operator makes at deployment."""

    admin: str | None = None          # governance account (defaults to the deployer)
    registrar: str | None = None      # first credentialing authority (defaults to the deployer)
    token: str | None = None          # the stablecoin; a 6-decimal mock is deployed on dev chains if absent
    max_break_glass: int = DEFAULT_MAX_BREAK_GLASS


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
    care = ensure("CareRegistry", "CareRegistry", signer.address)
    consent = ensure("ConsentRegistry", "ConsentRegistry", signer.address, care, options.max_break_glass)
    records = ensure("RecordRegistry", "RecordRegistry", care, consent)
    escrow = ensure("ClaimEscrow", "ClaimEscrow", care, consent, records, token, signer.address)

    _wire_roles(chain, signer, {"CareRegistry": care, "ConsentRegistry": consent, "ClaimEscrow": escrow},
                admin, registrar, log)
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


def _wire_roles(chain: Chain, signer: Signer, addresses: dict[str, str], admin: str, registrar: str,
                log: Callable[[str], None]) -> None:
    care = chain.contract("CareRegistry", addresses["CareRegistry"])
    registrar_role = chain.call(care.functions.REGISTRAR_ROLE())
    admin_role = b"\x00" * 32
    if not chain.call(care.functions.hasRole(registrar_role, registrar)):
        if chain.call(care.functions.hasRole(admin_role, signer.address)):
            chain.transact(signer, care.functions.grantRole(registrar_role, registrar))
            log(f"CareRegistry: registrar {registrar} appointed")
    # A deployer that is not the named registrar keeps no registrar power (it had it as the default
    # registrar of an earlier run), once the named one holds the role.
    if registrar.lower() != signer.address.lower() and chain.call(care.functions.hasRole(registrar_role, registrar)) \
            and chain.call(care.functions.hasRole(registrar_role, signer.address)):
        chain.transact(signer, care.functions.renounceRole(registrar_role, signer.address))
        log(f"CareRegistry: the deployer renounced its registrar role to {registrar}")
    # Hand governance over last, once everything else is wired: every admin-held role moves to
    # `admin` and the deployer renounces it (DEFAULT_ADMIN_ROLE last, as it guards the others).
    if admin.lower() == signer.address.lower():
        return
    for name, address in addresses.items():
        contract = chain.contract(name, address)
        roles = [chain.call(getattr(contract.functions, r)()) for r in ("PAUSER_ROLE",)
                 if any(i.get("name") == r for i in contract.abi)] + [admin_role]
        for role in roles:
            if not chain.call(contract.functions.hasRole(role, admin)):
                chain.transact(signer, contract.functions.grantRole(role, admin))
            if chain.call(contract.functions.hasRole(role, signer.address)):
                chain.transact(signer, contract.functions.renounceRole(role, signer.address))
        log(f"{name}: admin roles handed to {admin}")


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
    plan += [("CareRegistry", "CareRegistry", (deployer,)),
             ("ConsentRegistry", "ConsentRegistry", (deployer, placeholder, options.max_break_glass)),
             ("RecordRegistry", "RecordRegistry", (placeholder, placeholder))]
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
