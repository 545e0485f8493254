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
from .chain import Chain
from .config import DEV_CHAIN_IDS
from .errors import ConfigError

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
    action: str  # "deployed" | "kept"
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
    if options.token is None and chain_id not in DEV_CHAIN_IDS:
        raise ConfigError("on a live network pass the stablecoin address (--token 0x...)")
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

    token = options.token and to_checksum_address(options.token)
    if token is None:
        token = ensure("Stablecoin", "MockStablecoin")
    care = ensure("CareRegistry", "CareRegistry", signer.address)
    consent = ensure("ConsentRegistry", "ConsentRegistry", signer.address, care, options.max_break_glass)
    records = ensure("RecordRegistry", "RecordRegistry", care, consent)
    escrow = ensure("ClaimEscrow", "ClaimEscrow", care, consent, records, token, signer.address)

    _wire_roles(chain, signer, {"CareRegistry": care, "ConsentRegistry": consent, "ClaimEscrow": escrow},
                admin, registrar, log)
    return steps


def _wire_roles(chain: Chain, signer: Signer, addresses: dict[str, str], admin: str, registrar: str,
                log: Callable[[str], None]) -> None:
    care = chain.contract("CareRegistry", addresses["CareRegistry"])
    registrar_role = chain.call(care.functions.REGISTRAR_ROLE())
    admin_role = b"\x00" * 32
    if not chain.call(care.functions.hasRole(registrar_role, registrar)):
        if chain.call(care.functions.hasRole(admin_role, signer.address)):
            chain.transact(signer, care.functions.grantRole(registrar_role, registrar))
            log(f"CareRegistry: registrar {registrar} appointed")
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
