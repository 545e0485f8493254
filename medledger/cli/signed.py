"""`--sign -o FILE`: the patient (or a guardian) signs an action off-chain instead of sending it.

Shared by `consent guardian add|remove` and `emergency close|allow`; the file is the one `consent sign`
writes, and `consent relay FILE` submits any of them (the relayer pays the gas).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from ..contracts import SignedConsent
from ..eip712 import MAX_SIGNATURE_LIFETIME
from .app import App
from .options import F


def sign_options(fn: F) -> F:
    """--sign, --out/-o FILE and --deadline-minutes: sign the action to FILE for anyone to relay."""
    for decorator in reversed([
        click.option("--sign", "sign", is_flag=True,
                     help="Sign the action off-chain (no gas) and write it to --out for anyone to relay "
                          "with `consent relay FILE`."),
        click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
                     help="With --sign: file to write the signed action to."),
        click.option("--deadline-minutes", type=click.IntRange(1, MAX_SIGNATURE_LIFETIME // 60), default=60,
                     show_default=True, help="With --sign: relayable for this long (at most 7 days, the contract's "
                                             "limit)."),
    ]):
        fn = decorator(fn)
    return fn


def sign_to_file(app: App, sign: bool, out: Path | None, deadline_minutes: int,
                 build: Callable[[int], SignedConsent]) -> bool:
    """With --sign: signs `build(deadline)` and writes it to `out`, then returns True; else returns False
    (the command sends the action itself)."""
    if not sign:
        if out is not None:
            raise click.UsageError("--out goes with --sign (without --sign the action is sent at once)")
        return False
    if out is None:
        raise click.UsageError("--sign needs --out FILE to write the signed action to")
    if out.exists():
        raise click.BadParameter(f"{out} exists already", param_hint="--out")
    signed = build(app.now() + 60 * deadline_minutes)
    out.write_text(json.dumps(signed.to_json(), indent=2))
    app.done(f"signed {signed.kind} for {signed.counterparty} written to {out}; anyone may relay it with "
             f"`medledger consent relay {out}`", file=out, kind=signed.kind)
    return True
