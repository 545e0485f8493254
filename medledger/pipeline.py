"""The off-chain half of anchoring a record: FHIR in, on-chain-ready hashes out.

    validate (optional) -> canonicalize (RFC 8785) -> seal (AES-256-GCM + ECIES key wrap)
    -> vault put (content-addressed, atomic) -> contentHash = keccak256(envelope bytes)

`prepare_record` does one record; `prepare_batch` spreads many over a process pool (both cores
by default) in chunks and writes the vault index once at the end. What goes on chain afterwards
is only `PreparedRecord.record_id`, `.content_hash`, `.patient`, `.data_class` (and, in Merkle
batches, `PreparedRecord.leaf`): random ids, hashes and addresses, never PHI.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from medledger import crypto, fhir
from medledger.errors import RecordTampered, VaultError
from medledger.merkle import RecordLeaf
from medledger.record_ids import new_record_id, require_patient
from medledger.scopes import DataClass
from medledger.vault import IndexEntry, LocalVault, Vault

Document = Mapping[str, Any] | str | bytes


@dataclass(frozen=True)
class PreparedRecord:
    """A record version sealed and stored off chain, ready to anchor.

    ``content_hash`` is keccak256 of the sealed envelope (== the vault id, the on-chain
    contentHash); ``sha256_plain`` / ``keccak_plain`` are digests of the canonical plaintext, for
    the holder's own integrity checks after decryption. They stay off chain.
    """

    record_id: bytes
    version: int
    patient: str
    data_class: int
    content_hash: bytes
    sha256_plain: bytes
    keccak_plain: bytes
    vault_id: str

    def leaf(self, author: str) -> RecordLeaf:
        """This version's Merkle batch leaf, authored by ``author``."""
        return RecordLeaf(self.record_id, self.content_hash, self.patient, self.version, self.data_class,
                          author)


@dataclass(frozen=True)
class RecordJob:
    """Input for one record version in `prepare_batch`.

    ``doc`` is a parsed FHIR JSON object or its JSON text; ``recipients`` maps addresses to
    public keys and must include the patient; ``record_id`` defaults to a fresh random id.
    """

    doc: Document
    patient: str
    recipients: Mapping[str, Any]
    data_class: int
    version: int = 1
    record_id: bytes | None = None


def _checked_data_class(value: int) -> int:
    try:
        return int(DataClass(value))
    except ValueError:
        known = [int(d) for d in DataClass]
        raise ValueError(f"unknown data class {value!r}; expected one of {known}") from None


def prepare_record(
    doc: Document,
    *,
    patient: str,
    recipients: Mapping[str, Any],
    data_class: int,
    vault: Vault,
    version: int = 1,
    record_id: bytes | None = None,
    validate: bool = True,
    fhir_version: fhir.FhirVersion = "auto",
    index: bool = True,
) -> PreparedRecord:
    """Validate (unless ``validate=False``), canonicalize, seal and store one record version.

    Raises FhirInvalid for an invalid document, AccountError for a bad public key or a missing
    patient key, VaultError if the blob cannot be stored. With ``index`` and a `LocalVault`, the
    vault index maps (record_id, version) to the blob.
    """
    rid = record_id if record_id is not None else new_record_id(patient)
    require_patient(rid, patient)
    prepared = _prepare(doc, rid, version, patient, recipients, data_class, vault, validate, fhir_version)
    if index and isinstance(vault, LocalVault):
        vault.index.add(prepared.record_id, prepared.version, prepared.vault_id)
    return prepared


def _seal(doc: Document, record_id: bytes, version: int, patient: str, recipients: Mapping[str, Any],
          data_class: int, validate: bool, fhir_version: fhir.FhirVersion) -> tuple[bytes, PreparedRecord]:
    """The CPU half: (envelope bytes, the record it will be once stored)."""
    data_class = _checked_data_class(data_class)
    canonical = fhir.canonical_document(doc, validate=validate, version=fhir_version)
    envelope = crypto.seal(canonical.canonical, record_id, version, patient, recipients)
    blob = envelope.to_bytes()
    content_hash = keccak(blob)
    return blob, PreparedRecord(
        record_id=envelope.record_id,
        version=envelope.version,
        patient=envelope.patient,
        data_class=data_class,
        content_hash=content_hash,
        sha256_plain=canonical.sha256,
        keccak_plain=canonical.keccak,
        vault_id="0x" + content_hash.hex(),
    )


def _store(vault: Vault, blob: bytes, prepared: PreparedRecord) -> PreparedRecord:
    stored = vault.put(blob)
    if stored != prepared.vault_id:  # a Vault implementation that is not keccak-addressed
        raise VaultError(f"vault stored record 0x{prepared.record_id.hex()} as {stored}, "
                         f"expected its keccak256 {prepared.vault_id}")
    return prepared


def _prepare(doc: Document, record_id: bytes, version: int, patient: str, recipients: Mapping[str, Any],
             data_class: int, vault: Vault, validate: bool, fhir_version: fhir.FhirVersion) -> PreparedRecord:
    blob, prepared = _seal(doc, record_id, version, patient, recipients, data_class, validate, fhir_version)
    return _store(vault, blob, prepared)


_Job = tuple[Document, bytes, int, str, Mapping[str, Any], int]


def _prepare_chunk(args: tuple[list[_Job], Vault, bool, str]) -> list[PreparedRecord]:
    jobs, vault, validate, fhir_version = args
    sealed = [_seal(doc, rid, version, patient, recipients, data_class, validate, fhir_version)  # type: ignore[arg-type]
              for doc, rid, version, patient, recipients, data_class in jobs]
    if isinstance(vault, LocalVault):  # one group commit per chunk instead of two fsyncs per blob
        vault.put_many(blob for blob, _ in sealed)  # keccak-addressed: ids == prepared.vault_id
        return [prepared for _, prepared in sealed]
    return [_store(vault, blob, prepared) for blob, prepared in sealed]


def prepare_batch(
    jobs: Sequence[RecordJob],
    vault: Vault,
    *,
    workers: int | None = 2,
    chunksize: int | None = None,
    validate: bool = False,
    fhir_version: fhir.FhirVersion = "auto",
    index: bool = True,
    executor: ProcessPoolExecutor | None = None,
) -> list[PreparedRecord]:
    """Prepare many record versions on a process pool; results are in input order.

    ``workers`` defaults to 2 (this deployment's core count; None means os.cpu_count()). Jobs are
    sent in chunks (default: about 8 chunks per worker, 16-256 jobs each) so the inter-process
    overhead is paid per chunk, not per record. Each worker writes its blobs to the vault
    directly (atomic, content-addressed writes are safe to run concurrently); the parent writes
    the vault index once at the end. Pass an ``executor`` to reuse a warm pool across batches.
    The first failing job's exception propagates (blobs already written stay; they are
    harmless and content-addressed, and nothing was indexed or anchored for the batch).
    """
    n = len(jobs)
    if n == 0:
        return []
    workers = max(1, workers or os.cpu_count() or 1)
    planned = [(job.doc, job.record_id if job.record_id is not None else new_record_id(job.patient), job.version,
                job.patient, job.recipients, job.data_class) for job in jobs]
    for _doc, rid, _version, patient, _recipients, _class in planned:
        require_patient(rid, patient)
    if executor is None and (workers == 1 or n < 8):
        results = _prepare_chunk((planned, vault, validate, fhir_version))
    else:
        size = chunksize or min(256, max(16, math.ceil(n / (workers * 8))))
        chunks = [(planned[i:i + size], vault, validate, fhir_version) for i in range(0, n, size)]
        if executor is not None:
            results = [r for chunk in executor.map(_prepare_chunk, chunks) for r in chunk]
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = [r for chunk in pool.map(_prepare_chunk, chunks) for r in chunk]
    if index and isinstance(vault, LocalVault):
        vault.index.add_many(IndexEntry("0x" + r.record_id.hex(), r.version, r.vault_id) for r in results)
    return results


def open_record(
    vault: Vault,
    content_hash: bytes | str,
    address: str,
    private_key: Any,
    *,
    expected: PreparedRecord | None = None,
) -> bytes:
    """Fetch a sealed version by its content hash, check its integrity and decrypt it.

    Returns the canonical plaintext bytes. Raises RecordNotFound / RecordTampered from the vault,
    DecryptionFailed if ``address`` cannot open it, and RecordTampered if ``expected`` is given
    and the envelope's record id, version, patient or plaintext digest disagree with it.
    """
    blob = vault.get(content_hash)
    envelope = crypto.Envelope.from_bytes(blob)
    if expected is not None:
        claimed = (envelope.record_id, envelope.version, envelope.patient)
        wanted = (expected.record_id, expected.version, to_checksum_address(expected.patient))
        if claimed != wanted:
            raise RecordTampered(
                f"blob {_hex(content_hash)} holds record 0x{envelope.record_id.hex()} "
                f"v{envelope.version} of {envelope.patient}, expected record 0x{expected.record_id.hex()} "
                f"v{expected.version} of {expected.patient}")
    plaintext = crypto.open_envelope(envelope, address, private_key)
    if expected is not None:
        found = fhir.sha256(plaintext)
        if found != expected.sha256_plain:
            raise RecordTampered(
                f"record 0x{expected.record_id.hex()} v{expected.version}: plaintext sha256 is "
                f"0x{found.hex()}, expected 0x{expected.sha256_plain.hex()}")
    return plaintext


def _hex(content_hash: bytes | str) -> str:
    return "0x" + content_hash.hex() if isinstance(content_hash, bytes) else content_hash
