"""The SDK's vocabulary (`medledger.scopes`) under the short names the tests use; no value is typed here.

Purposes and data classes are bit indexes (`bit(TREAT, LABS)` is a mask); roles, claim statuses and
claim frequencies are the SDK's enums.
"""
from __future__ import annotations

from medledger.scopes import ClaimFrequency, ClaimStatus, DataClass, Purpose, Role

TREAT, ETREAT, HPAYMT = Purpose.TREAT, Purpose.ETREAT, Purpose.HPAYMT
HOPERAT, HRESCH, COVERAGE = Purpose.HOPERAT, Purpose.HRESCH, Purpose.COVERAGE
DEMOGRAPHICS, CONDITIONS, MEDICATIONS = DataClass.DEMOGRAPHICS, DataClass.CONDITIONS, DataClass.MEDICATIONS
ALLERGIES, LABS, IMAGING, NOTES = DataClass.ALLERGIES, DataClass.LABS, DataClass.IMAGING, DataClass.NOTES
BILLING, GENOMICS = DataClass.BILLING, DataClass.GENOMICS
MENTAL_HEALTH, SUBSTANCE_USE = DataClass.MENTAL_HEALTH, DataClass.SUBSTANCE_USE

#: Every purpose / every data class (sensitive ones included) as a mask: 0x3F / 0x7FF.
ALL_PURPOSES = sum(1 << p for p in Purpose)
ALL_CLASSES = sum(1 << c for c in DataClass)

PROVIDER_ROLE, INSURER_ROLE, ARBITER_ROLE = Role.PROVIDER, Role.INSURER, Role.ARBITER
ORIGINAL, REPLACEMENT, VOID = ClaimFrequency.ORIGINAL, ClaimFrequency.REPLACEMENT, ClaimFrequency.VOID

__all__ = [
    "ALLERGIES", "ALL_CLASSES", "ALL_PURPOSES", "ARBITER_ROLE", "BILLING", "CONDITIONS", "COVERAGE", "ClaimFrequency",
    "ClaimStatus", "DEMOGRAPHICS", "DataClass", "ETREAT", "GENOMICS", "HOPERAT", "HPAYMT", "HRESCH", "IMAGING",
    "INSURER_ROLE", "LABS", "MEDICATIONS", "MENTAL_HEALTH", "NOTES", "ORIGINAL", "PROVIDER_ROLE", "Purpose",
    "REPLACEMENT", "Role", "SUBSTANCE_USE", "TREAT", "VOID", "bit",
]


def bit(*indexes: int) -> int:
    """A bitmask with the given bit indexes set."""
    mask = 0
    for index in indexes:
        mask |= 1 << index
    return mask
