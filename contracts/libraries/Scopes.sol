// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title Scopes
 * @notice The consent vocabulary shared by every MedLedger contract: HL7 purposes of use and data
 * classes as bit indexes, and the masks built from them. `medledger/scopes.py` holds the same values
 * for the SDK; tests/test_scopes_vocabulary.py reads this library's compiled AST and fails if the two
 * ever differ.
 * @dev Internal constants only: they are inlined where used, so no contract's ABI or bytecode
 * layout depends on this library and it is never deployed. Every value is a plain literal so the
 * vocabulary test can read it without evaluating expressions.
 */
library Scopes {
    // Purposes of use (bit index in a uint8 purposes mask).
    uint8 internal constant TREAT = 0;
    uint8 internal constant ETREAT = 1;
    uint8 internal constant HPAYMT = 2;
    uint8 internal constant HOPERAT = 3;
    uint8 internal constant HRESCH = 4;
    uint8 internal constant COVERAGE = 5;
    /// @dev The highest defined purpose (COVERAGE).
    uint8 internal constant MAX_PURPOSE = 5;
    /// @dev 1 << TREAT.
    uint8 internal constant TREAT_BIT = 0x01;
    /// @dev Purposes TREAT..COVERAGE (bits 0-5).
    uint8 internal constant ALL_PURPOSES = 0x3F;

    // Data classes (bit index in a uint16 data-class mask).
    uint8 internal constant DEMOGRAPHICS = 0;
    uint8 internal constant CONDITIONS = 1;
    uint8 internal constant MEDICATIONS = 2;
    uint8 internal constant ALLERGIES = 3;
    uint8 internal constant LABS = 4;
    uint8 internal constant IMAGING = 5;
    uint8 internal constant NOTES = 6;
    uint8 internal constant BILLING = 7;
    uint8 internal constant GENOMICS = 8;
    uint8 internal constant MENTAL_HEALTH = 9;
    uint8 internal constant SUBSTANCE_USE = 10;
    /// @dev The highest defined data class (SUBSTANCE_USE).
    uint8 internal constant MAX_DATA_CLASS = 10;
    /// @dev Data classes DEMOGRAPHICS..SUBSTANCE_USE (bits 0-10); also what an open break-glass covers.
    /// A pairwise pseudonym's bits are labels (a per-pseudonym permutation of the classes), so no
    /// contract can single out the sensitive classes; the gateway excludes them from emergency reading.
    uint16 internal constant ALL_DATA_CLASSES = 0x07FF;
}
