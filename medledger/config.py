"""Where MedLedger finds its chain, its deployments, its keys and its vault.

Every setting has a default, can be set in the environment, and can be overridden on the
command line. Nothing here touches the network.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigError

#: The project root when the package is used from a checkout (editable install).
PROJECT_ROOT = Path(__file__).resolve().parent.parent

@dataclass(frozen=True)
class ChainProfile:
    """A public network the suite is deployed to: its chain id, where its RPC URL comes from, how many
    blocks a transaction waits for, and which fee model prices it (`medledger.l2fees.Network`)."""

    name: str
    chain_id: int
    rpc_env: str
    confirmations: int
    fee_model: str
    explorer: str


#: Public test networks. The RPC URL always comes from the environment (never from a file in the repo).
#: Confirmations: 3 blocks on Ethereum (about 36 s); 10 on the L2s, whose sequencer can reorder unsafe blocks.
PROFILES: dict[str, ChainProfile] = {p.name: p for p in (
    ChainProfile("sepolia", 11155111, "SEPOLIA_RPC_URL", 3, "ethereum", "https://sepolia.etherscan.io"),
    ChainProfile("op-sepolia", 11155420, "OP_SEPOLIA_RPC_URL", 10, "op-stack", "https://sepolia-optimism.etherscan.io"),
    ChainProfile("base-sepolia", 84532, "BASE_SEPOLIA_RPC_URL", 10, "op-stack", "https://sepolia.basescan.org"),
    ChainProfile("arbitrum-sepolia", 421614, "ARBITRUM_SEPOLIA_RPC_URL", 10, "arbitrum", "https://sepolia.arbiscan.io"),
)}

#: Named networks and their RPC endpoints; `$VAR` values are read from the environment.
NETWORKS: dict[str, str] = {
    "ganache": "http://127.0.0.1:8545",
    "medledger-ganache": "http://127.0.0.1:8545",
    "anvil": "http://127.0.0.1:8546",
    "medledger-anvil": "http://127.0.0.1:8546",
    **{name: "$" + profile.rpc_env for name, profile in PROFILES.items()},
}

#: Chain ids of local development chains (Ganache, Anvil).
DEV_CHAIN_IDS = frozenset({1337, 31337})


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one invocation of the SDK or CLI."""

    rpc_url: str
    network: str
    deployments_path: Path
    keystore_dir: Path
    brownie_accounts_dir: Path
    vault_dir: Path
    build_dir: Path
    confirmations: int = 1
    tx_timeout: float = 120.0
    rpc_timeout: float = 30.0
    rpc_retries: int = 4
    expected_chain_id: int | None = None   # a named profile's chain id: a mismatching RPC is refused

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _expand(url: str, network: str) -> str:
    if url.startswith("$"):
        var = url[1:]
        value = os.environ.get(var)
        if not value:
            raise ConfigError(f"network '{network}' needs its RPC URL in the environment variable {var}")
        return value
    return url


def resolve_rpc(network: str | None, rpc: str | None) -> tuple[str, str]:
    """The (network name, RPC URL) for `--network`/`--rpc`; an explicit RPC URL wins."""
    if rpc:
        if not rpc.startswith(("http://", "https://", "ws://", "wss://")):
            raise ConfigError(f"--rpc must be an http(s) or ws(s) URL, got '{rpc}'")
        return network or "custom", rpc
    name = network or os.environ.get("MEDLEDGER_NETWORK") or "ganache"
    env_rpc = os.environ.get("MEDLEDGER_RPC")
    if env_rpc and not network:
        return "custom", env_rpc
    if name not in NETWORKS:
        known = ", ".join(sorted(NETWORKS))
        raise ConfigError(f"unknown network '{name}' (known: {known}; or pass --rpc URL)")
    return name, _expand(NETWORKS[name], name)


def _env_number(var: str, default: float | int, kind: type) -> float | int:
    """A positive number from the environment variable `var`, else `default`."""
    raw = os.environ.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a positive number, got '{raw}'") from None
    if value <= 0:
        raise ConfigError(f"{var} must be a positive number, got '{raw}'")
    return value


def load_settings(network: str | None = None, rpc: str | None = None, **overrides: object) -> Settings:
    """Settings from defaults, then the environment, then explicit overrides."""
    name, url = resolve_rpc(network, rpc)
    home = Path(os.environ.get("MEDLEDGER_HOME", Path.home() / ".medledger"))
    settings = Settings(
        rpc_url=url,
        network=name,
        deployments_path=Path(os.environ.get("MEDLEDGER_DEPLOYMENTS", PROJECT_ROOT / "deployments.json")),
        keystore_dir=Path(os.environ.get("MEDLEDGER_KEYSTORE_DIR", home / "keystore")),
        brownie_accounts_dir=Path(os.environ.get("BROWNIE_ACCOUNTS_DIR", Path.home() / ".brownie" / "accounts")),
        vault_dir=Path(os.environ.get("MEDLEDGER_VAULT", home / "vault")),
        build_dir=Path(os.environ.get("MEDLEDGER_BUILD", PROJECT_ROOT / "build" / "contracts")),
        confirmations=int(os.environ.get("MEDLEDGER_CONFIRMATIONS") or (PROFILES[name].confirmations
                                                                           if name in PROFILES else 1)),
        expected_chain_id=PROFILES[name].chain_id if name in PROFILES else None,
        rpc_timeout=_env_number("MEDLEDGER_RPC_TIMEOUT", 30.0, float),
        rpc_retries=_env_number("MEDLEDGER_RPC_RETRIES", 4, int),
    )
    return settings.with_overrides(**overrides)
