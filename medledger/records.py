"""Record workflows on top of the contracts, the vault and the crypto: who a new version is sealed
for, where an existing version is proven on chain (a direct anchor or a Merkle batch), and the
batch manifests kept next to the vault blobs.

The vault directory stands in for a store every party can read (S3, a hospital file share...):
providers, patients and insurers all point at the same one. It holds only sealed envelopes, the
index and batch manifests (ids, hashes, addresses): nothing readable without a wrapped key.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from . import crypto
from .audit import fetch_events
from .chain import Chain
from .contracts import CareRegistry, ConsentRegistry, RecordRegistry, batch_id_of
from .data_classes import class_label
from .errors import AccountError, ConsentMissing, NotRegistered, RecordNotFound, RecordTampered, VaultError
from .merkle import RecordLeaf, StandardMerkleTree
from .scopes import SENSITIVE, DataClass, Purpose, Role
from .vault import LocalVault, atomic_write

MANIFEST_FORMAT = "medledger-batch-manifest-v1"
MANIFEST_DIR = "batches"


def publish_key_hint(who: str = "PATIENT") -> str:
    """How `who` publishes its encryption key (the command it runs with its own account)."""
    return f"`medledger --account {who} registry publish-key`"


# --------------------------------------------------------------------------- recipients


def patient_public_key(care: CareRegistry, consent: ConsentRegistry, patient: str,
                       disclosed: MutableMapping[str, bytes] | None = None) -> bytes:
    """The key records of `patient` are sealed to: the one it published in the CareRegistry, else (a
    pairwise pseudonym, which never sends a transaction) the public key its own signed consent discloses
    (`ConsentRegistry.signed_public_key`). AccountError says how to get one when there is neither.

    ``disclosed`` caches the second kind (see `PatientKeys`): a key recovered from the patient's own
    signature is its address's public key and never changes, so the event scan runs once per patient. The
    published key is read on every call: its owner may republish or withdraw it at any time."""
    patient = to_checksum_address(patient)
    raw = care.encryption_key(patient)
    try:
        if raw:
            key = crypto.normalize_public_key(raw)
        elif disclosed is not None and patient in disclosed:
            key = disclosed[patient]
        else:
            key = consent.signed_public_key(patient)
            if key and disclosed is not None:
                disclosed[patient] = key
    except AccountError as exc:
        raise AccountError(f"patient {patient} published a malformed encryption key ({exc}); the patient "
                           f"re-runs {publish_key_hint()}") from None
    if not key:
        raise AccountError(f"patient {patient} has not published an encryption key nor signed a consent that "
                           f"discloses one, so no record can be sealed for them: the patient runs "
                           f"{publish_key_hint()}, or (a pseudonym) signs a consent first")
    return key


class PatientKeys:
    """`patient_public_key` for a long-running process (the gateway), cached per patient by the rule that
    keeps it exact:

    * a key disclosed by the patient's signed consent is the public key of its address: it cannot change,
      so once found it is kept for the life of the process (no event scan, no transaction fetch again);
    * a key published in the CareRegistry (round 1) can be republished or withdrawn by its owner at any
      time, and it takes precedence: it is read again on every call (one ``encryptionKeyOf`` view), so a
      republished key is used from the next record on, and a withdrawn one falls back to the disclosed key.
    """

    def __init__(self, care: CareRegistry, consent: ConsentRegistry) -> None:
        self.care, self.consent = care, consent
        self._disclosed: dict[str, bytes] = {}  # dict writes are atomic: safe across the gateway's threads

    def __call__(self, patient: str) -> bytes:
        return patient_public_key(self.care, self.consent, patient, self._disclosed)

    def cached(self, patient: str) -> bool:
        """Whether `patient`'s disclosed key is already known (no scan needed)."""
        return to_checksum_address(patient) in self._disclosed


@dataclass(frozen=True)
class Recipients:
    """Who a new record version is sealed for: address -> public key, plus the parties that may
    read it but published no key (they are left out, and told so)."""

    keys: Mapping[str, bytes]
    unkeyed: tuple[str, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(sorted(self.keys))


class ReaderDirectory:
    """Candidate readers of each patient's records, from ConsentRegistry events (read once).

    A candidate is anyone the patient (or a guardian) ever granted; `recipients` keeps those whose
    granted access is live *now*. Break-glass is emergency reading of what exists, never a standing
    key: a provider whose only access is an open break-glass window gets no key to new versions.
    """

    def __init__(self, chain: Chain, care: CareRegistry, consent: ConsentRegistry, from_block: int = 0) -> None:
        self.chain, self.care, self.consent = chain, care, consent
        self._candidates: dict[str, dict[str, None]] = {}
        for ev in fetch_events(chain, {"ConsentRegistry": consent.address}, from_block):
            if ev.event != "ConsentGranted":
                continue
            patient = to_checksum_address(ev.args["patient"])
            self._candidates.setdefault(patient, {})[to_checksum_address(ev.args["grantee"])] = None
        self._keys: dict[str, bytes] = {}
        self._patient_keys: dict[str, bytes] = {}

    def candidates(self, patient: str) -> list[str]:
        return list(self._candidates.get(to_checksum_address(patient), {}))

    def published_key(self, account: str) -> bytes:
        """`account`'s published encryption key (b"" if none), checked to be a curve point."""
        account = to_checksum_address(account)
        if account not in self._keys:
            raw = self.care.encryption_key(account)
            self._keys[account] = crypto.normalize_public_key(raw) if raw else b""
        return self._keys[account]

    def patient_key(self, patient: str) -> bytes:
        """The patient's key (see `patient_public_key`), or AccountError telling how to get one; read once
        per patient (a batch seals many records for few patients)."""
        patient = to_checksum_address(patient)
        if patient not in self._patient_keys:
            self._patient_keys[patient] = patient_public_key(self.care, self.consent, patient)
        return self._patient_keys[patient]

    def may_read(self, patient: str, grantee: str, data_class: int) -> bool:
        """Whether `grantee` holds a live grant of `patient` covering `data_class` (for some purpose)
        and is an active party right now. Break-glass does not count."""
        stored = self.consent.consent(patient, grantee)
        now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        if not stored.covers(now, data_class):
            return False
        # The grant covers this purpose and class now, so hasConsent only adds "is an active party".
        purpose = next(p for p in Purpose if stored.purposes >> p & 1)
        return self.consent.has_consent(patient, grantee, purpose, DataClass(data_class))

    def recipients(self, patient: str, data_class: int, author: str, author_key: bytes,
                   emergency: Iterable[str] = ()) -> Recipients:
        """The patient, the author, and every grantee with live granted access to this class that has a
        key. `emergency` names break-glass readers the author deliberately seals THIS version for: each
        must hold an open window covering the class now and a published key (else ConsentMissing /
        AccountError). Nobody gets a key through break-glass otherwise (no standing keys)."""
        patient, author = to_checksum_address(patient), to_checksum_address(author)
        keys = {patient: self.patient_key(patient), author: crypto.normalize_public_key(author_key)}
        for reader in (to_checksum_address(r) for r in emergency):
            if not self.consent.has_consent(patient, reader, Purpose.ETREAT, DataClass(data_class)):
                raise ConsentMissing(f"{reader} has no open emergency access to {patient} for "
                                     f"{DataClass(data_class).name.lower()}: it cannot be an emergency reader")
            require_not_sensitive_by_break_glass(self.consent, patient, reader, data_class, Purpose.ETREAT,
                                                 "it cannot be an emergency reader")
            key = self.published_key(reader)
            if not key:
                raise AccountError(f"emergency reader {reader} published no encryption key "
                                   f"(it runs {publish_key_hint('READER')})")
            keys[reader] = key
        unkeyed = []
        for grantee in self.candidates(patient):
            if grantee in keys or not self.may_read(patient, grantee, data_class):
                continue
            try:
                key = self.published_key(grantee)
            except AccountError:
                key = b""
            if key:
                keys[grantee] = key
            else:
                unkeyed.append(grantee)
        return Recipients(keys, tuple(unkeyed))


# --------------------------------------------------------------------------- batch manifests


@dataclass(frozen=True)
class BatchMember:
    """A record version proven only by a Merkle batch (not promoted to a regular anchor)."""

    batch_id: int
    leaf: RecordLeaf
    proof: tuple[bytes, ...]
    manifest: Path


def manifest_path(vault_dir: Path, root: bytes) -> Path:
    return Path(vault_dir) / MANIFEST_DIR / f"0x{root.hex()}.json"


def manifest_bytes(chain_id: int, registry: str, provider: str, tree: StandardMerkleTree) -> bytes:
    """The batch manifest (what `manifestHash` commits to): the tree's leaves and where it is anchored.

    One leaf per record id: a manifest naming an id twice is refused (VaultError), so a batch never
    offers a choice of variants for one record."""
    seen: set[str] = set()
    for _index, value in tree.entries():
        rid = str(value[0]).lower() if not isinstance(value[0], bytes) else "0x" + value[0].hex()
        if rid in seen:
            raise VaultError(f"batch names record {rid} twice: a manifest holds one leaf per record id")
        seen.add(rid)
    doc = {"format": MANIFEST_FORMAT, "chainId": chain_id, "registry": to_checksum_address(registry),
           "provider": to_checksum_address(provider), "root": tree.root_hex,
           "batchId": hex(batch_id_of(provider, tree.root)), "count": len(tree), "tree": tree.dump()}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_manifest(vault_dir: Path, data: bytes, root: bytes) -> Path:
    """Stores a manifest durably (idempotent for identical bytes)."""
    path = manifest_path(vault_dir, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.is_file() and path.read_bytes() == data):
        atomic_write(path, data, durable=True)
    return path


def _leaf_from_value(value: Iterable[Any]) -> RecordLeaf:
    rid, digest, patient, version, data_class, author = value
    return RecordLeaf(bytes.fromhex(rid[2:]), bytes.fromhex(digest[2:]), patient, int(version), int(data_class),
                      author)


def find_batch_member(vault_dir: Path, chain_id: int, registry: str, record_id: bytes,
                      version: int | None = None) -> BatchMember | None:
    """The batch leaf of `record_id` (at `version`, if given) in this deployment's manifests."""
    wanted = "0x" + record_id.hex()
    registry = to_checksum_address(registry)
    for path in sorted((Path(vault_dir) / MANIFEST_DIR).glob("0x*.json")):
        try:
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if doc.get("format") != MANIFEST_FORMAT or doc.get("chainId") != chain_id \
                or doc.get("registry") != registry:
            continue
        values = doc["tree"]["values"]
        for index, item in enumerate(values):
            value = item["value"]
            if str(value[0]).lower() == wanted and (version is None or int(value[3]) == version):
                try:
                    tree = StandardMerkleTree.load(doc["tree"])
                except ValueError as exc:
                    raise VaultError(f"batch manifest {path} is corrupt: {exc}") from None
                return BatchMember(int(doc["batchId"], 16), _leaf_from_value(value),
                                   tuple(tree.get_proof(index)), path)
    return None


# --------------------------------------------------------------------------- locating versions


@dataclass(frozen=True)
class Located:
    """One record version and what the chain says about it."""

    record_id: bytes
    version: int
    content_hash: bytes
    patient: str
    data_class: int
    author: str
    anchored_at: int
    latest: bool
    latest_version: int
    versions: tuple[int, ...] = ()
    batch: BatchMember | None = None
    events: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def rid(self) -> str:
        return "0x" + self.record_id.hex()

    @property
    def cid(self) -> str:
        return "0x" + self.content_hash.hex()

    @property
    def label(self) -> str:
        return f"record {self.rid} v{self.version}"


def locate(records: RecordRegistry, vault_dir: Path, chain_id: int, record_id: bytes, version: int | None = None,
           from_block: int = 0) -> Located:
    """Where `record_id` (latest version unless `version`) is proven: its anchor events, else a batch
    manifest whose batch is anchored on chain. RecordNotFound otherwise."""
    rid = "0x" + record_id.hex()
    latest = records.latest_of(record_id)
    if latest is not None:
        history = records.history(record_id, from_block)
        if not history:
            raise RecordNotFound(f"record {rid} is anchored but its events are not visible from block {from_block}")
        by_version = {e.version: e for e in history}
        pick = latest.info.version if version is None else version
        if pick not in by_version:
            raise RecordNotFound(f"record {rid} has no version {pick} on chain (versions: {sorted(by_version)})")
        entry = by_version[pick]
        info = records.record_info(record_id, bytes.fromhex(entry.content_hash[2:]))
        first = history[0]
        return Located(record_id, pick, bytes.fromhex(entry.content_hash[2:]), first.patient,
                       latest.info.data_class, entry.author, info.anchored_at, info.latest, latest.info.version,
                       tuple(sorted(by_version)), None, tuple(history))
    member = find_batch_member(vault_dir, chain_id, records.address, record_id, version)
    if member is not None:
        batch = records.batch_of(member.batch_id)
        if not batch.exists:
            raise RecordNotFound(f"record {rid} is in batch manifest {member.manifest.name}, but that batch is not "
                                 f"anchored on chain {chain_id} (re-run `medledger record put-batch` to finish it)")
        if not records.verify_in_batch(member.leaf, member.proof, member.batch_id):
            raise RecordTampered(f"record {rid}: its leaf in {member.manifest.name} does not prove against batch "
                                 f"{hex(member.batch_id)} on chain (manifest altered)")
        leaf = member.leaf
        return Located(record_id, leaf.version, leaf.content_hash, leaf.patient, leaf.data_class, leaf.author,
                       batch.anchored_at, True, leaf.version, (leaf.version,), member)
    suffix = f" v{version}" if version is not None else ""
    raise RecordNotFound(f"record {rid}{suffix} is not anchored on chain {chain_id} "
                         f"(nor in any anchored batch manifest of the vault)")


def read_blob(vault: LocalVault, located: Located) -> bytes:
    """The vault blob of a located version, checked against the hash anchored on chain."""
    try:
        return vault.get(located.content_hash)
    except RecordTampered:
        found = "0x" + keccak(vault.path_of(located.content_hash).read_bytes()).hex()
        raise RecordTampered(f"{located.label} was tampered with: the chain anchors contentHash {located.cid}, "
                             f"the vault blob hashes to {found}") from None
    except RecordNotFound:
        raise RecordNotFound(f"{located.label} (blob {located.cid}) is not in the vault {vault.directory}") from None


def check_envelope(envelope: crypto.Envelope, located: Located) -> None:
    """The blob's authenticated header must name the version the chain anchored."""
    if envelope.record_id != located.record_id or envelope.version != located.version:
        raise RecordTampered(f"{located.label}: the anchored blob is labelled record 0x{envelope.record_id.hex()} "
                             f"v{envelope.version}")


# --------------------------------------------------------------------------- pre-flight checks
#
# Writes check everything they can before sealing and sending, so that a refusal never leaves
# half-done work (a sealed blob without an anchor, a promotion without its amendment). The
# contracts refuse the same things; these give the typed exception and a sentence first.


def require_provider(care: CareRegistry, who: str) -> None:
    """NotRegistered unless `who` is an active provider (only providers anchor and amend records)."""
    if not care.is_active(who, Role.PROVIDER):
        raise NotRegistered(f"{who} is not an active provider in the CareRegistry: only providers anchor records")


def has_treatment(consent: ConsentRegistry, patient: str, provider: str, data_class: int) -> bool:
    """Whether `provider` holds live TREAT consent of `patient` for `data_class` (interface 2: writing
    needs TREAT; break-glass is reading only)."""
    return consent.has_consent(patient, provider, Purpose.TREAT, DataClass(data_class))


def require_treatment(consent: ConsentRegistry, patient: str, provider: str, data_class: int) -> None:
    """ConsentMissing unless `provider` may write `data_class` records of `patient` (RecordRegistry's rule)."""
    if not has_treatment(consent, patient, provider, data_class):
        name = class_label(data_class)
        raise ConsentMissing(f"{provider} holds no live TREAT consent of patient {patient} for {name} (emergency "
                             f"access only reads): the patient runs `medledger --account PATIENT consent grant "
                             f"{provider} -p treat -c {name}`")


def require_promoter(located: Located, who: str) -> None:
    """Only a batched record's author or its patient may promote it to a regular anchor."""
    if who not in (located.author, located.patient):
        raise ConsentMissing(f"{located.label} is only in a batch of {located.author}; only that author or the "
                             f"patient may promote it (the author runs `medledger record get {located.rid}` once)")


def require_amend(care: CareRegistry, consent: ConsentRegistry, located: Located, author: str) -> None:
    """Who may anchor the next version of `located`: an active provider with live TREAT consent for its
    class, even the author of the earlier versions (a revoked author may not amend); a batched version
    is promoted first, which only its author or patient may do."""
    require_provider(care, author)
    require_treatment(consent, located.patient, author, located.data_class)
    if located.batch is not None:
        require_promoter(located, author)


def require_read(consent: ConsentRegistry, located: Located, reader: str, purpose: Purpose) -> None:
    """ConsentMissing unless `reader` is the patient or holds `purpose` consent for the record's class
    (and, for a sensitive class under ETREAT, an explicit grant: see `require_not_sensitive_by_break_glass`)."""
    if reader == located.patient:
        return
    if not consent.has_consent(located.patient, reader, purpose, DataClass(located.data_class)):
        raise ConsentMissing(f"{reader} has no {purpose.name} consent of patient {located.patient} for "
                             f"{class_label(located.data_class)} ({located.label}): nothing was read")
    require_not_sensitive_by_break_glass(consent, located.patient, reader, located.data_class, purpose,
                                         f"nothing of {located.label} was read")


def require_not_sensitive_by_break_glass(consent: ConsentRegistry, patient: str, reader: str, data_class: int,
                                         purpose: Purpose, outcome: str) -> None:
    """ConsentMissing if `reader` would reach a sensitive class (genomics, mental health, substance use;
    42 CFR Part 2) of `patient` through break-glass alone. The ConsentRegistry's break-glass covers every
    class bit, because a pairwise pseudonym's bits are labels the chain cannot read (docs/PRIVACY.md,
    section 2); the SDK and the gateway, which know the real class, keep this exclusion. An explicit, live
    ETREAT grant naming the class still counts."""
    if purpose != Purpose.ETREAT or DataClass(data_class) not in SENSITIVE:
        return
    stored = consent.consent(patient, reader)
    now = int(consent.chain.w3.eth.get_block("latest")["timestamp"])
    if not (stored.covers(now, data_class) and stored.purposes >> Purpose.ETREAT & 1):
        raise ConsentMissing(f"{reader} reaches {class_label(data_class)} of patient {patient} only through "
                             f"break-glass, which never covers a sensitive class (42 CFR Part 2): {outcome}")
