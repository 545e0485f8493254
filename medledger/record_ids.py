"""Record ids: the patient's address (20 bytes) followed by 12 random bytes made off chain.

The RecordRegistry reads a record's patient from its id, so no call can name another patient for a
record and only a provider that patient consented to can take one of the patient's ids. The
address is no secret: every record event indexes it. The 96 random bits keep ids unguessable and
collision-free within a patient.
"""
from __future__ import annotations

import os

from eth_utils import to_checksum_address

from .errors import RecordIdInvalid

RANDOM_BYTES = 12


def record_id(patient: str, suffix: bytes) -> bytes:
    """The record id of `patient` ending in `suffix` (12 bytes)."""
    if len(suffix) != RANDOM_BYTES:
        raise RecordIdInvalid(f"a record id ends in {RANDOM_BYTES} bytes after the patient address, got {len(suffix)}")
    return bytes.fromhex(to_checksum_address(patient)[2:]) + bytes(suffix)


def new_record_id(patient: str) -> bytes:
    """A fresh record id of `patient`."""
    return record_id(patient, os.urandom(RANDOM_BYTES))


def patient_of(record_id: bytes) -> str:
    """The patient a record id belongs to (checksummed address)."""
    if len(record_id) != 32:
        raise RecordIdInvalid(f"a record id is 32 bytes, got {len(record_id)}")
    return to_checksum_address(record_id[:20])


def require_patient(record_id: bytes, patient: str) -> None:
    """Raise RecordIdInvalid unless `record_id` is a record id of `patient`."""
    owner = patient_of(record_id)
    if int(owner, 16) == 0:
        raise RecordIdInvalid(f"record id 0x{record_id.hex()} does not start with a patient address")
    if owner != to_checksum_address(patient):
        raise RecordIdInvalid(f"record id 0x{record_id.hex()} belongs to patient {owner}, "
                              f"not {to_checksum_address(patient)}")
