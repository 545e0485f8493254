"""`medledger governance`: the timelocked powers of the CareRegistry (docs/OPERATIONS.md, "Powers").

    medledger --safe SAFE --account OWNER governance schedule reinstate PARTY   # a Safe proposal of schedule(...)
    medledger --account OWNER2 safe confirm FILE; medledger --account ANYONE safe execute FILE
    medledger --account ANYONE governance execute reinstate PARTY               # once the delay has passed

Every action exists under `schedule`, `execute`, `cancel` and `status`, with the same arguments: the same
command finds the same operation again (medledger/timelock.py).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import timelock as tl
from ..messages import utc
from ..timelock import GovernedCall, Operation, OperationState, Timelock
from .app import App, tx_fields
from .options import address_argument, bytes32_option, commitment

Builder = Callable[..., GovernedCall]


@click.group()
def governance() -> None:
    """Timelocked governance: reinstating and migrating parties, registering and assigning arbiters, appointing
    registrars."""


@governance.group()
def schedule() -> None:
    """Schedule a governed call; send it as the Safe (`medledger --safe SAFE governance schedule ...`)."""


@governance.group()
def execute() -> None:
    """Execute a scheduled call once its delay has passed (any account may)."""


@governance.group()
def cancel() -> None:
    """Cancel a scheduled call (the Safe: `medledger --safe SAFE governance cancel ...`)."""


@governance.group()
def status() -> None:
    """Whether a governed call is scheduled, and when the timelock releases it."""


def _timelock(app: App) -> Timelock:
    return Timelock.of_deployment(app.chain, app.deployment)


def _report(app: App, op: Operation, message: str, result: Any = None) -> None:
    ready = utc(op.ready_at) if op.state in (OperationState.WAITING, OperationState.READY) else ""
    fields = {"operation": op.id, "salt": op.salt, "state": op.state.name.lower(), "ready_at": ready,
              **(tx_fields(result) if result is not None else {})}
    if result is None:
        app.emit({"call": op.call.description, **fields}, title="Timelock operation")
    else:
        app.done(message, **fields)


def _verbs(build: Builder) -> dict[str, Callable[..., None]]:
    """The four commands of one action: each builds the call from the arguments, then acts on it."""

    def do_schedule(app: App, **kwargs: Any) -> None:
        call = build(app, saving=True, **kwargs)
        op, result = _timelock(app).schedule(app.signer, call)
        _report(app, op, f"scheduled {call.description}: executable from {utc(op.ready_at)}", result)

    def do_execute(app: App, **kwargs: Any) -> None:
        call = build(app, **kwargs)
        op, result = _timelock(app).execute(app.signer, call)
        _report(app, op, f"executed {call.description}", result)

    def do_cancel(app: App, **kwargs: Any) -> None:
        call = build(app, **kwargs)
        op, result = _timelock(app).cancel(app.signer, call)
        _report(app, op, f"cancelled {call.description}", result)

    def do_status(app: App, **kwargs: Any) -> None:
        _report(app, _timelock(app).current(build(app, **kwargs)), "")

    return {"schedule": do_schedule, "execute": do_execute, "cancel": do_cancel, "status": do_status}


def action(name: str, doc: str, *decorators: Callable[[Any], Any]) -> Callable[[Builder], Builder]:
    """Registers `name` under schedule, execute, cancel and status, with the same arguments."""

    def register(build: Builder) -> Builder:
        for verb, run in _verbs(build).items():
            def command(app: App, _run: Callable[..., None] = run, **kwargs: Any) -> None:
                _run(app, **kwargs)

            command.__doc__ = doc
            command.__name__ = f"{verb}_{name.replace('-', '_')}"
            wrapped: Any = click.pass_obj(command)
            for decorator in reversed(decorators):
                wrapped = decorator(wrapped)
            {"schedule": schedule, "execute": execute, "cancel": cancel, "status": status}[verb].command(name)(wrapped)
        return build

    return register


@action("reinstate", "Reinstate a suspended ACCOUNT.", address_argument("account"))
def _reinstate(app: App, account: str, saving: bool = False) -> GovernedCall:
    return tl.reinstate(app.care, account)


@action("migrate", "Move the party at ACCOUNT to the fresh account NEW_ACCOUNT (its money, claims and consents "
        "follow; ACCOUNT can do nothing afterwards).", address_argument("account"), address_argument("new_account"))
def _migrate(app: App, account: str, new_account: str, saving: bool = False) -> GovernedCall:
    return tl.migrate(app.care, account, new_account)


@action("add-arbiter", "Register ACCOUNT as arbiter.", address_argument("account"),
        bytes32_option("--metadata", help="bytes32 commitment to the off-chain credentials."),
        click.option("--credentials", "credentials_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Credentials document to commit to (salted hash; the salt is kept in FILE.salt.json when "
                          "scheduling, and the same file gives the same commitment when executing)."))
def _add_arbiter(app: App, account: str, metadata: bytes | None, credentials_file: Path | None,
                 saving: bool = False) -> GovernedCall:
    credentials = commitment(credentials_file, metadata, "--metadata")
    if saving and credentials.salted is not None:  # execute must find the same commitment: keep the salt now
        credentials.salted.save(chain_id=app.chain.chain_id)
    return tl.register_arbiter(app.care, account, credentials.value)


@action("assign-arbiter", "Assign ARBITER to resolve INSURER's disputes.", address_argument("insurer"),
        address_argument("arbiter"))
def _assign_arbiter(app: App, insurer: str, arbiter: str, saving: bool = False) -> GovernedCall:
    return tl.assign_arbiter(app.care, insurer, arbiter)


@action("grant-registrar", "Appoint ACCOUNT registrar.", address_argument("account"))
def _grant_registrar(app: App, account: str, saving: bool = False) -> GovernedCall:
    return tl.grant_registrar(app.care, account)


@action("revoke-registrar", "Revoke ACCOUNT's registrar role.", address_argument("account"))
def _revoke_registrar(app: App, account: str, saving: bool = False) -> GovernedCall:
    return tl.revoke_registrar(app.care, account)
