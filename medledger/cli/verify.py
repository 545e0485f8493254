"""`medledger verify`: standard-JSON inputs, metadata and a manifest for the deployment on this chain."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import PROJECT_ROOT
from ..errors import VerificationError
from ..verification import MatchKind, verify_deployment
from .app import App


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write (default: deployments/<chain id>/ in the project: commit it for real networks).")
@click.option("--no-check", is_flag=True, help="Only write the inputs; do not recompile and compare with the chain.")
@click.pass_obj
def verify(app: App, out_dir: Path | None, no_check: bool) -> None:
    """Write each contract's standard-JSON input (Etherscan), metadata and sources (Sourcify) and the
    deployment manifest; recompile and compare with the code on chain, immutables masked."""
    deployment = app.deployment
    out = out_dir or PROJECT_ROOT / "deployments" / str(deployment.chain_id)
    results = verify_deployment(app.chain, deployment, PROJECT_ROOT, Path(app.settings.build_dir), out,
                                check=not no_check)
    app.emit([{"contract": r.name, "address": r.address, "match": "not checked" if no_check else r.match.value,
               "changed sources": ", ".join(r.changed_sources) or "-"} for r in results],
             title=f"Verification inputs in {out}", columns=["contract", "address", "match", "changed sources"])
    bad = [r.name for r in results if not no_check and r.match is not MatchKind.FULL]
    if bad:
        raise VerificationError(f"the code on chain does not match this source for: {', '.join(bad)}")
