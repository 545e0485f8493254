"""`medledger keys new | import | list`: encrypted keystore management."""
from __future__ import annotations

import os

import click

from ..accounts import PASSWORD_ENV, create_keystore, import_key, list_keystores
from .app import App


@click.group()
def keys() -> None:
    """Manage encrypted keystores (eth-account scrypt keyfiles; never plaintext)."""


def _new_password() -> str:
    if os.environ.get(PASSWORD_ENV) is not None:
        return os.environ[PASSWORD_ENV]
    return click.prompt("New keystore password", hide_input=True, confirmation_prompt=True)


@keys.command("new")
@click.argument("name")
@click.pass_obj
def keys_new(app: App, name: str) -> None:
    """Create a new random key in keystore NAME (password from a prompt or MEDLEDGER_PASSWORD)."""
    entry = create_keystore(app.settings.keystore_dir, name, _new_password())
    app.done(f"created {entry.name}: {entry.address}", name=entry.name, address=entry.address, path=entry.path)


@keys.command("import")
@click.argument("name")
@click.option("--private-key-env", metavar="VAR", help="Read the private key from this environment variable.")
@click.pass_obj
def keys_import(app: App, name: str, private_key_env: str | None) -> None:
    """Import an existing private key into keystore NAME (key from a hidden prompt or --private-key-env)."""
    if private_key_env:
        key = os.environ.get(private_key_env, "")
        if not key:
            raise click.BadParameter(f"environment variable {private_key_env} is empty", param_hint="--private-key-env")
    else:
        key = click.prompt("Private key (hex)", hide_input=True)
    entry = import_key(app.settings.keystore_dir, name, key, _new_password())
    app.done(f"imported {entry.name}: {entry.address}", name=entry.name, address=entry.address, path=entry.path)


@keys.command("list")
@click.pass_obj
def keys_list(app: App) -> None:
    """List keystores (MedLedger's and brownie's) with their addresses; no password needed."""
    rows = [{"name": e.name, "address": e.address, "path": str(e.path)}
            for e in list_keystores(app.settings.keystore_dir, app.settings.brownie_accounts_dir)]
    app.emit(rows, title="Keystores", columns=["name", "address", "path"])
