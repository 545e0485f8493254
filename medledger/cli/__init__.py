"""The `medledger` command line: each party drives MedLedger from its own wallet.

`main` is the root click group; every command group is registered on it below with
`add_command`. Run as the console script, `main()` prints every user mistake as one line on
stderr and exits non-zero (a traceback means a bug); `main.main(..., standalone_mode=False)`
lets a `MedLedgerError` propagate instead, and click's `CliRunner` can drive it in-process.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import load_settings
from ..errors import MedLedgerError, Proposed
from .app import App, err_console
from .audit import audit
from .claims import claim, coverage, escrow
from .consent import consent, emergency
from .deploy import deploy
from .dev import dev
from .gateway import gateway
from .governance import governance
from .index import attach as attach_index_commands
from .keys import keys
from .patient import patient
from .record import record
from .registry import registry
from .safe import safe
from .verify import verify


def _error(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


class MedLedgerGroup(click.Group):
    """The root group: in standalone mode every user mistake ends as one line on stderr."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name or "medledger", complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name or "medledger", complete_var, standalone_mode=False, **extra)
        except Proposed as done:  # a transaction sent as a Safe became a proposal: not a failure
            arguments = sys.argv[1:] if args is None else list(args)
            click.echo(json.dumps(done.details) if "--json" in arguments else str(done))
            code = 0
        except MedLedgerError as exc:
            _error(str(exc))
            code = exc.exit_code
        except click.exceptions.Abort:
            _error("aborted")
            code = 130
        except click.ClickException as exc:
            # One line, like every other user mistake (click's default adds usage lines).
            _error(exc.format_message())
            code = exc.exit_code
        except KeyboardInterrupt:
            _error("interrupted")
            code = 130
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=MedLedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--safe", "safe_address", envvar="MEDLEDGER_SAFE", metavar="ADDRESS",
              help="Act as this Safe: a transaction becomes a proposal signed by --account (an owner). "
                   "Env: MEDLEDGER_SAFE.")
@click.option("--pairwise", is_flag=True, envvar="MEDLEDGER_PAIRWISE",
              help="Act as a patient through pairwise pseudonyms: one unlinkable address per provider and insurer, "
                   "derived from --account; the pseudonyms only sign, relayers send. Env: MEDLEDGER_PAIRWISE=1.")
@click.option("--gateway", "gateway_url", envvar="MEDLEDGER_GATEWAY", metavar="URL",
              help="A record gateway's origin: `record put/get/list` go through it instead of the local vault, and "
                   "`audit verify` checks its log. Env: MEDLEDGER_GATEWAY.")
@click.pass_context
def main(ctx: click.Context, network, rpc, account, keystore, deployments, vault, keystore_dir, confirmations,
         as_json, safe_address, pairwise, gateway_url):
    """MedLedger: consent, record anchors and claim escrow for healthcare, on Ethereum."""
    settings = load_settings(network, rpc, deployments_path=deployments, vault_dir=vault,
                             keystore_dir=keystore_dir, confirmations=confirmations)
    spec = f"keystore:{keystore}" if keystore else account
    ctx.obj = App(settings=settings, account_spec=spec, as_json=as_json, safe=safe_address, pairwise=pairwise,
                  gateway_url=gateway_url or None)


for _command in (keys, deploy, registry, consent, emergency, record, escrow, coverage, claim, audit, dev, verify,
                 safe, governance, gateway, patient):
    main.add_command(_command)
attach_index_commands(main)

#: The root group under its earlier name.
cli = main

__all__ = ["App", "cli", "main"]
