"""The `medledger` command line: each party drives MedLedger from its own wallet.

Every user mistake ends in one line on stderr and a non-zero exit; a traceback means a bug.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import load_settings
from ..errors import MedLedgerError
from .app import App, err_console


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--network", "-n", help="Named network: ganache (default), anvil, sepolia. Env: MEDLEDGER_NETWORK.")
@click.option("--rpc", help="RPC URL (overrides --network). Env: MEDLEDGER_RPC.")
@click.option("--account", "-a", envvar="MEDLEDGER_ACCOUNT",
              help="Signer: NAME, keystore:NAME|FILE, brownie:NAME, env:VAR or node:INDEX. Env: MEDLEDGER_ACCOUNT.")
@click.option("--keystore", type=click.Path(dir_okay=False, path_type=Path), help="Signer from this keystore file.")
@click.option("--deployments", type=click.Path(dir_okay=False, path_type=Path),
              help="Deployments file (default: deployments.json in the project). Env: MEDLEDGER_DEPLOYMENTS.")
@click.option("--vault", type=click.Path(file_okay=False, path_type=Path),
              help="Vault directory. Env: MEDLEDGER_VAULT.")
@click.option("--keystore-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where keystores live (default ~/.medledger/keystore). Env: MEDLEDGER_KEYSTORE_DIR.")
@click.option("--confirmations", type=click.IntRange(1, 64), help="Blocks to wait after each transaction.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(ctx: click.Context, network, rpc, account, keystore, deployments, vault, keystore_dir, confirmations, as_json):
    """MedLedger: consent, record anchors and claim escrow for healthcare, on Ethereum."""
    settings = load_settings(network, rpc, deployments_path=deployments, vault_dir=vault,
                             keystore_dir=keystore_dir, confirmations=confirmations)
    spec = f"keystore:{keystore}" if keystore else account
    ctx.obj = App(settings=settings, account_spec=spec, as_json=as_json)


def _register_commands() -> None:
    import importlib

    for name in ("keys", "deploy", "registry", "consent", "records", "claims", "audit", "dev", "gateway"):
        importlib.import_module(f"{__name__}.{name}")  # each module attaches its commands to `cli`


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    _register_commands()
    try:
        code = cli.main(args=argv, prog_name="medledger", standalone_mode=False)
    except MedLedgerError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Abort:
        err_console.print("[red]error:[/red] aborted")
        return 130
    except click.ClickException as exc:
        # One line, like every other user mistake (click's default adds usage lines).
        err_console.print(f"[red]error:[/red] {exc.format_message()}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("[red]error:[/red] interrupted")
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
