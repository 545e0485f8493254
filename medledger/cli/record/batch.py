"""`medledger record put-batch`: many records, one Merkle batch, one transaction, crash-safe.

The stages and their recovery are described in `medledger.batch`; this module drives them.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from eth_hash.auto import keccak
from web3.exceptions import TransactionNotFound

from ... import data_classes, fhir, pipeline
from ...batch import MANIFEST_NAME, BatchEntry, BatchJournal, JournalState
from ...contracts import batch_id_of
from ...errors import (
    BatchJournalError,
    ContractReverted,
    DataClassMismatch,
    FhirInvalid,
    RecordNotFound,
    RecordTampered,
    VaultError,
)
from ...merkle import StandardMerkleTree
from ...records import ReaderDirectory, Recipients, manifest_bytes, require_provider, require_treatment, write_manifest
from ...scopes import DataClass, lookup
from ...vault import IndexEntry
from ..app import App, iter_chunks
from ..options import address_option, class_option, fhir_options
from .common import (
    author_key,
    class_label,
    file_parts,
    from_block,
    node,
    progress,
    read_fhir,
    readers,
    vault,
    warn_unkeyed,
)

SEAL_CHUNK = 64


def _inspect(job: tuple[bytes, str, bool]) -> tuple[str | None, data_classes.Contents | str]:
    """Worker: (None, what the file holds) for a valid FHIR document (validated if asked), else the FhirInvalid
    message and/or the DataClassMismatch message. The file is parsed once for both."""
    raw, version, validate = job
    try:
        doc = fhir.parse(raw)
        if validate:
            fhir.validate_document(doc, version)  # type: ignore[arg-type]
    except FhirInvalid as exc:
        return str(exc), ""
    try:
        return None, data_classes.contents(doc)
    except DataClassMismatch as exc:
        return None, str(exc)


def _batch_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if BatchJournal.is_batch_file(p))
    if not files:
        raise click.UsageError(f"no FHIR *.json files in {directory}")
    return files


def _assignments(app: App, directory: Path, files: Sequence[Path], patient: str | None,
                 default_class: DataClass | None) -> list[tuple[str, DataClass | None, str | None]]:
    """(patient, declared class or None, where it was declared) of each file: DIR/manifest.json entries,
    else --patient / --class."""
    manifest: dict[str, Any] = {}
    path = directory / MANIFEST_NAME
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("expected an object keyed by file name")
        except ValueError as exc:
            raise click.BadParameter(f"{path} is not a valid manifest ({exc})") from None
    default_patient = patient
    out: list[tuple[str, DataClass | None, str | None]] = []
    for file in files:
        entry = manifest.get(file.name, {})
        who = entry.get("patient")
        address = app.address_of(who, f"patient of {file.name}") if who else default_patient
        if address is None:
            raise click.UsageError(f"no patient for {file.name}: pass --patient or list it in {path}")
        if "class" in entry:
            cls = lookup(DataClass, entry["class"])
            out.append((address, cls, f"the class {class_label(cls)} of {MANIFEST_NAME}"))
        elif default_class is not None:
            out.append((address, default_class, f"--class {class_label(default_class)}"))
        else:
            out.append((address, None, None))
    return out


def _refuse_uncovered(files: Sequence[Path], found: Sequence[data_classes.Contents],
                      assigned: Sequence[tuple[str, DataClass | None, str | None]]) -> None:
    """DataClassMismatch naming every file whose declared class does not cover its contents (the first three
    in full), before anything is sealed or anchored."""
    refused = []
    for file, contents, (_who, declared, declared_as) in zip(files, found, assigned, strict=True):
        if declared is not None:
            try:
                data_classes.require_covered(contents, declared, declared_as or "")
            except DataClassMismatch as exc:
                refused.append(f"{file.name}: {exc}")
    if refused:
        more = f"; and {len(refused) - 3} more files" if len(refused) > 3 else ""
        raise DataClassMismatch(f"{len(refused)} of {len(files)} files refused, nothing was sealed or anchored: "
                                f"{'; '.join(refused[:3])}{more}")


def _check_parties(app: App, directory: ReaderDirectory, pairs: set[tuple[str, int]]) -> None:
    author = app.signer.address
    require_provider(app.care, author)
    for patient, dc in sorted(pairs):
        directory.patient_key(patient)
        require_treatment(app.consent, patient, author, dc)


def _plan(app: App, readers: ReaderDirectory, journal: BatchJournal, files: Sequence[Path], patient: str | None,
          default_class: DataClass | None, fhir_version: str, validate: bool, workers: int) -> JournalState:
    """Checks everything, then journals the batch's records (one per data class of each file) and their fresh
    record ids."""
    assigned = _assignments(app, journal.directory, files, patient, default_class)
    raws = [f.read_bytes() for f in files]
    if validate and raws:
        fhir.warm_up(raws[0], fhir_version)  # forked workers inherit the compiled validators
    found: list[data_classes.Contents] = []
    jobs = [(raw, fhir_version, validate) for raw in raws]
    with progress(app) as bar, ProcessPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("validating FHIR" if validate else "reading FHIR", total=len(raws))
        # Validation is worth the workers; reading the classes alone (--no-validate) is cheaper here (~50 us a
        # file) than forking them.
        inspected = pool.map(_inspect, jobs, chunksize=8) if validate else map(_inspect, jobs)
        for file, (error, contents) in zip(files, inspected, strict=True):
            if error is not None:
                raise FhirInvalid(f"{file.name}: {error}")
            if isinstance(contents, str):
                raise DataClassMismatch(f"{file.name}: {contents}")
            found.append(contents)
            bar.advance(task)
    _refuse_uncovered(files, found, assigned)
    entries = tuple(BatchEntry(file=f.name, sha256="0x" + hashlib.sha256(raw).hexdigest(), patient=who,
                               data_class=int(dc), record_id="0x" + pipeline.new_record_id(who).hex(),
                               split=len(contents.found) > 1)
                    for f, raw, (who, _declared, _as), contents in zip(files, raws, assigned, found, strict=True)
                    for dc in sorted(contents.classes))
    _check_parties(app, readers, {(e.patient, e.data_class) for e in entries})
    return journal.save(JournalState(stage="planned", chain_id=app.chain.chain_id, registry=app.records.address,
                                     provider=app.signer.address, fhir_version=fhir_version, entries=entries))


def _check_journal(app: App, journal: BatchJournal, state: JournalState, files: Sequence[Path]) -> None:
    """A resumed run must be the same batch: same chain, registry, provider and files."""
    where = (app.chain.chain_id, app.records.address, app.signer.address)
    if (state.chain_id, state.registry, state.provider) != where:
        raise BatchJournalError(f"{journal.path} belongs to provider {state.provider} on chain {state.chain_id} "
                                f"(registry {state.registry}): run it as that provider, or move the journal away")
    now = {f.name: "0x" + hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    then = {e.file: e.sha256 for e in state.entries}
    if now != then:
        changed = sorted(set(now) ^ set(then) | {n for n in set(now) & set(then) if now[n] != then[n]})
        raise BatchJournalError(f"{journal.directory} changed since its batch was planned ({', '.join(changed[:5])}"
                                f"{'...' if len(changed) > 5 else ''}): restore it, or put new files in a new folder")


def _document(directory: Path, entry: BatchEntry, parts: dict[str, dict[int, Mapping[str, Any]]]
              ) -> bytes | Mapping[str, Any]:
    """What entry's record holds: its file's bytes, or (a file of several classes) its class's part; a
    split file is parsed once (``parts`` keeps its parts by file name)."""
    if not entry.split:
        return (directory / entry.file).read_bytes()
    if entry.file not in parts:
        doc = fhir.parse((directory / entry.file).read_bytes())
        parts[entry.file] = {int(p.data_class): p.document for p in data_classes.split(doc)}
    return parts[entry.file][entry.data_class]


def _seal(app: App, readers: ReaderDirectory, journal: BatchJournal, state: JournalState,
          workers: int) -> JournalState:
    """Seals every file into the vault (parallel), writes the manifest, journals `prepared`."""
    _check_parties(app, readers, {(e.patient, e.data_class) for e in state.entries})
    author = app.signer.address
    own_key = author_key(app)
    recipients: dict[tuple[str, int], Recipients] = {}
    for e in state.entries:
        if (e.patient, e.data_class) not in recipients:
            recipients[(e.patient, e.data_class)] = readers.recipients(e.patient, e.data_class, author, own_key)
            warn_unkeyed(recipients[(e.patient, e.data_class)])
    split_parts: dict[str, dict[int, Mapping[str, Any]]] = {}
    jobs = [pipeline.RecordJob(doc=_document(journal.directory, e, split_parts), patient=e.patient,
                               recipients=recipients[(e.patient, e.data_class)].keys, data_class=e.data_class,
                               version=1, record_id=bytes.fromhex(e.record_id[2:])) for e in state.entries]
    store = vault(app)
    prepared: list[pipeline.PreparedRecord] = []
    with progress(app) as bar, ProcessPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("sealing records", total=len(jobs))
        for chunk in iter_chunks(jobs, SEAL_CHUNK):
            prepared += pipeline.prepare_batch(chunk, store, workers=workers, validate=False, index=False,
                                               fhir_version=state.fhir_version,  # type: ignore[arg-type]
                                               executor=pool)
            bar.advance(task, len(chunk))
    tree = StandardMerkleTree.of_records(p.leaf(author) for p in prepared)
    manifest = manifest_bytes(state.chain_id, state.registry, author, tree)
    path = write_manifest(app.settings.vault_dir, manifest, tree.root)
    entries = tuple(replace(e, content_hash=p.vault_id) for e, p in zip(state.entries, prepared, strict=True))
    return journal.save(state.at("prepared", entries=entries, root=tree.root_hex,
                                 batch_id=hex(batch_id_of(author, tree.root)),
                                 manifest_hash="0x" + keccak(manifest).hex(), manifest=str(path)))


def _check_sealed(app: App, state: JournalState) -> None:
    """On resume: every journaled blob is in the vault, intact, and the manifest is there."""
    store = vault(app)
    for e in state.entries:
        try:
            store.get(e.content_hash or "")
        except (RecordNotFound, RecordTampered, ValueError) as exc:
            raise VaultError(f"cannot resume the batch: {e.file}'s sealed blob is unusable ({exc})") from None
    if not state.manifest or not Path(state.manifest).is_file() or \
            "0x" + keccak(Path(state.manifest).read_bytes()).hex() != state.manifest_hash:
        raise VaultError(f"cannot resume the batch: its manifest {state.manifest} is missing or altered")


def _index(app: App, state: JournalState) -> None:
    vault(app).index.add_many(IndexEntry(e.record_id, 1, e.content_hash or "") for e in state.entries)


def _anchored(app: App, journal: BatchJournal, state: JournalState, batch_id: int) -> JournalState:
    """Journals `anchored` from the BatchAnchored event already on chain."""
    with node(app):
        events = app.records.batch_anchored_events(batch_id, from_block(app))
    if not events:
        raise BatchJournalError(f"batch {hex(batch_id)} is stored on chain but its BatchAnchored event is not "
                                f"visible from block {from_block(app)}")
    with node(app):
        receipt = app.chain.w3.eth.get_transaction_receipt(events[0]["tx"])
    return journal.save(state.at("anchored", tx=events[0]["tx"], block=events[0]["block"],
                                 gas_used=int(receipt["gasUsed"])))


def _submit(app: App, journal: BatchJournal, state: JournalState) -> JournalState:
    """Anchors the prepared batch exactly once, whatever an earlier run left behind."""
    batch_id = int(state.batch_id or "0x0", 16)
    if app.records.batch_of(batch_id).exists:
        return _anchored(app, journal, state, batch_id)
    if state.tx:  # an earlier run sent it: wait for it if the node still knows it, else send again
        try:
            with node(app):
                app.chain.w3.eth.get_transaction(state.tx)
        except TransactionNotFound:
            pass
        else:
            try:
                app.chain.wait(bytes.fromhex(state.tx[2:]))
            except ContractReverted:
                pass  # it failed on chain: decided below
            if app.records.batch_of(batch_id).exists:
                return _anchored(app, journal, state, batch_id)
    count = len(state.entries)
    pending = {"state": state}

    def journal_sent(tx_hash: str) -> None:
        pending["state"] = journal.save(state.at("submitted", tx=tx_hash))

    try:
        result = app.records.anchor_batch(app.signer, bytes.fromhex((state.root or "")[2:]), count,
                                          bytes.fromhex((state.manifest_hash or "")[2:]), on_sent=journal_sent)
    except ContractReverted as exc:
        if exc.error == "BatchAlreadyAnchored" and app.records.batch_of(batch_id).exists:
            return _anchored(app, journal, pending["state"], batch_id)
        raise
    return journal.save(pending["state"].at("anchored", tx=result.tx_hash, block=result.block_number,
                                            gas_used=result.gas_used))


@click.command("put-batch")
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False, path_type=Path))
@address_option("--patient", help="Patient of every file (else per file in DIR/manifest.json).")
@class_option
@fhir_options
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Sealing processes.")
@click.pass_obj
def put_batch(app: App, directory: Path, patient: str | None, data_class: DataClass | None, fhir_version: str,
              no_validate: bool, workers: int) -> None:
    """Seal every FHIR *.json in DIR and anchor them as ONE Merkle batch (one transaction).

    Crash-safe: DIR/.medledger-batch.json journals each stage atomically (planned -> prepared ->
    submitted -> anchored). Re-running the same command after a crash, a killed process or a node
    restart resumes where it stopped: the same record ids, no duplicate anchor, no lost record.
    Patients per file come from DIR/manifest.json {"file.json": {"patient": "0x..", "class": "labs"}}
    or --patient. A file's records are its data classes: a file of several classes is split, one record
    per class. A declared class (the manifest's, else --class) must cover its file, or the whole batch
    is refused, naming the files, before anything is sealed or anchored.

    With --gateway: one FHIR batch to the gateway, which checks every file (all or nothing), seals each whole
    for its patient and its own key, and anchors them as ONE Merkle batch (no local journal: the gateway
    journals it).
    """
    started = time.monotonic()
    if app.gateway_url:
        _put_batch_remote(app, directory, patient, data_class, fhir_version, not no_validate, started)
        return
    journal = BatchJournal(directory)
    with journal.exclusive():
        files = _batch_files(directory)
        state = journal.load()
        resumed = state.stage if state is not None else None
        if state is None:
            directory_readers = readers(app)
            state = _plan(app, directory_readers, journal, files, patient, data_class, fhir_version, not no_validate,
                          workers)
        else:
            _check_journal(app, journal, state, files)
            directory_readers = readers(app) if state.stage == "planned" else None
        if state.stage == "planned":
            assert directory_readers is not None
            state = _seal(app, directory_readers, journal, state, workers)
        else:
            _check_sealed(app, state)
        _index(app, state)
        if state.stage != "anchored":
            state = _submit(app, journal, state)
        elif not app.records.batch_of(int(state.batch_id or "0x0", 16)).exists:
            raise BatchJournalError(f"{journal.path} says batch {state.batch_id} is anchored, but chain "
                                    f"{state.chain_id} does not know it (was the chain reset?): move the journal away "
                                    f"to batch again")
    verb = f"resumed from '{resumed}' and anchored" if resumed and resumed != "anchored" else \
        ("already anchored" if resumed == "anchored" else "anchored")
    split = sum(e.split for e in state.entries)
    files = len({e.file for e in state.entries})
    of_files = f" ({files} files, {len({e.file for e in state.entries if e.split})} split by class)" if split else ""
    app.done(f"{len(state.entries)} records{of_files} {verb} as batch {state.batch_id} (root {state.root}), "
             f"tx {state.tx}",
             batch_id=state.batch_id, root=state.root, count=len(state.entries), files=files,
             manifest=state.manifest,
             manifest_hash=state.manifest_hash, journal=journal.path, resumed_from=resumed, tx=state.tx,
             block=state.block, gas_used=state.gas_used, seconds=round(time.monotonic() - started, 2),
             records=[{"file": e.file, "record_id": e.record_id, "content_hash": e.content_hash,
                       "patient": e.patient, "data_class": class_label(e.data_class), "split": e.split}
                      for e in state.entries])


def _put_batch_remote(app: App, directory: Path, patient: str | None, data_class: DataClass | None,
                      fhir_version: str, validate: bool, started: float) -> None:
    """put-batch through the gateway: the files are checked here as in the local mode (FHIR, declared class),
    then sent as one FHIR batch; the gateway checks them again, all or nothing, and anchors one Merkle batch."""
    files = _batch_files(directory)
    assigned = _assignments(app, directory, files, patient, data_class)
    records = []
    for file, (who, declared, declared_as) in zip(files, assigned, strict=True):
        raw = read_fhir(file, fhir_version, validate)
        file_parts(file, raw, declared, fhir_version, False, declared_as)  # the refusal only: sent whole
        records.append((json.loads(raw), who))
    client = app.gateway()
    made = client.put_batch(records)
    app.done(f"{len(records)} records stored and anchored by the gateway {client.base_url} as batch "
             f"{made['batchId']} (root {made['root']}), tx {made['tx']}",
             batch_id=made["batchId"], root=made["root"], count=len(records), manifest_hash=made["manifestHash"],
             gateway=client.base_url, tx=made["tx"], block=made["block"],
             seconds=round(time.monotonic() - started, 2),
             records=[{"file": f.name, "record_id": rid, "patient": who}
                      for f, rid, (_doc, who) in zip(files, made["recordIds"], records, strict=True)])
