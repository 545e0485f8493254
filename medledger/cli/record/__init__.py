"""`medledger record ...`: seal, anchor, read, verify and trace health records.

Every party points at the same vault directory (--vault / MEDLEDGER_VAULT). It stands in for a
shared object store such as S3: it only ever holds sealed envelopes, the record index and batch
manifests (random ids, hashes, addresses), so sharing it discloses nothing without a wrapped key.

Writes check everything they can before sending (registration, consent, published keys, the FHIR
itself; the checks live in `medledger.records`), so a refusal never leaves half-done work on chain.

With the global --gateway (MEDLEDGER_GATEWAY), `put`, `get` and `list` go through a custodian's record
gateway instead (`remote`; docs/GATEWAY.md): it seals, stores, anchors, decides each read and audits it.
(`record list` itself is the index's, attached by cli/index.py.)

The commands, by what they do: `write` (put, amend), `batch` (put-batch), `read` (get), `check` (verify),
`remote` (put, get, list through a gateway) and `history` (a patient's records across custodians' gateways,
or one record's versions); `common` holds what they share.
"""
from __future__ import annotations

import click

from .batch import put_batch
from .check import verify
from .history import history
from .read import get
from .write import amend, put


@click.group()
def record() -> None:
    """Put, amend, batch, read, verify and trace sealed health records, and fetch a patient's history.

    \b
    Every party points at the same vault (--vault / MEDLEDGER_VAULT): it stands in for a shared
    store such as S3 and holds only sealed envelopes, the index and batch manifests. Each version
    is sealed for the patient, its author and every party with live access to its data class that
    published a key (`medledger registry publish-key`); the chain anchors keccak256 of the blob.
    With --gateway URL, put, get and list go through that record gateway instead.
    """


for _command in (put, amend, put_batch, get, verify, history):
    record.add_command(_command)

__all__ = ["record"]
