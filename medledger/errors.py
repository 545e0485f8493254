"""MedLedger's exceptions: one root, subclasses that name the domain.

Every error a user can cause is a `MedLedgerError`; the CLI prints its message on one line
and exits non-zero. Anything else is a bug.
"""
from __future__ import annotations


class MedLedgerError(Exception):
    """Root of every MedLedger error a user can cause."""

    exit_code = 1


class ConfigError(MedLedgerError):
    """Configuration is missing or invalid (network, RPC URL, deployments file)."""


class AccountError(MedLedgerError):
    """An account cannot be loaded: unknown name, wrong password, malformed key."""


class ChainError(MedLedgerError):
    """The chain cannot be reached or a transaction failed for a non-domain reason."""


class NotDeployed(ChainError):
    """No MedLedger deployment is recorded for this chain."""


class ContractReverted(ChainError):
    """A transaction or call reverted with a custom error; `error` names it and `args` holds its values."""

    def __init__(self, message: str, error: str = "", args: tuple = ()) -> None:
        super().__init__(message)
        self.error = error
        self.error_args = args


class NotRegistered(ContractReverted):
    """The party is not registered, or is suspended, in the CareRegistry."""


class ConsentMissing(ContractReverted):
    """The patient has not given the needed consent for this purpose and data class."""


class InsufficientEscrow(ContractReverted):
    """The insurer's free escrow balance cannot cover the amount."""


class SignatureUsed(ContractReverted):
    """A signed consent's nonce is spent: the signature was already relayed, or superseded by a later one."""


class ScopeError(MedLedgerError):
    """An unknown role, purpose or data class name."""


class AmountInvalid(MedLedgerError):
    """An amount that is not a positive number with at most the token's decimals."""


class SignedConsentInvalid(MedLedgerError):
    """A signed-consent file is unreadable, malformed or meant for another deployment."""


class TokenError(ConfigError):
    """The deployment's stablecoin is missing, ambiguous (a second token) or cannot do what was asked."""


class FhirInvalid(MedLedgerError):
    """A FHIR resource or Bundle failed validation; the message names the field path."""


class FhirValidationFailed(FhirInvalid):
    """A FHIR document broke one or more rules; ``issues`` holds every one with its FHIR path."""

    def __init__(self, message: str, *, issues: tuple = (), version: str | None = None) -> None:
        super().__init__(message)
        self.issues = issues
        self.version = version


class FhirVersionUnknown(FhirInvalid):
    """The FHIR version of a document could not be told from its content; the message names the likely one."""


class FhirMappingError(MedLedgerError):
    """A FHIR Consent or Claim cannot be turned into a MedLedger action; the message names the field."""


class DataClassMismatch(MedLedgerError):
    """A declared data class does not cover what a record holds (minimum necessary), or a record's
    contents cannot be split by class; the message lists what was found."""


class LabelKeyError(MedLedgerError):
    """A per-pseudonym label key or label mask is malformed, or a sealed label key names another pseudonym."""


class RecordTampered(MedLedgerError):
    """A record's bytes do not match what was anchored; the message names the record and both hashes."""


class RecordNotFound(MedLedgerError):
    """A record id is unknown to the vault or the chain."""


class RecordIdInvalid(MedLedgerError):
    """A record id does not belong to the named patient (its first 20 bytes are the patient's address)."""


class DecryptionFailed(MedLedgerError):
    """A ciphertext could not be decrypted: wrong key, wrong associated data or altered bytes."""


class VaultError(MedLedgerError):
    """The vault cannot store or return a blob."""


class TypedDataError(MedLedgerError):
    """EIP-712 typed data cannot be built or signed: a field is malformed or out of range, or the key is invalid."""


class BatchJournalError(MedLedgerError):
    """A batch folder's put-batch journal is unreadable, locked by another run, or no longer matches the folder."""


class VerificationError(MedLedgerError):
    """Source verification failed: no compiler, a source that does not compile, or code that does not match."""


class GovernanceError(MedLedgerError):
    """A Safe proposal cannot be made, confirmed or executed (not an owner, too few signatures, altered)."""


class Proposed(GovernanceError):
    """Not a failure: a transaction sent as a Safe became a proposal awaiting more owner signatures."""

    exit_code = 0

    def __init__(self, message: str, details: dict) -> None:
        super().__init__(message)
        self.details = details


class GatewayEndpointInvalid(MedLedgerError):
    """A gateway endpoint URL that cannot be published or used: not https (http only on loopback), not a bare
    origin, with credentials, a query or a fragment, or longer than the CareRegistry allows."""


class FederationError(MedLedgerError):
    """A patient's history across custodians cannot be resolved (no patient, no deployment block, ...)."""


class IndexerError(MedLedgerError):
    """The event index cannot be opened, read or brought up to date (bad database URL, another indexer, RPC)."""


class IndexBusy(IndexerError):
    """Another indexer is writing the same chain into the same database."""


class ReorgTooDeep(IndexerError):
    """The chain replaced blocks older than the index's reorg window: the index refuses to guess and stops."""


class CommitmentMismatch(MedLedgerError):
    """A document and salt do not open the salted commitment they claim to (or the salt is malformed)."""


class ControlNumberError(MedLedgerError):
    """A text control number ("RIV-0001") cannot be turned into the claim's keyed bytes32 here: the signer is
    not the claim's provider or insurer, or a party has no key to derive it with."""


class GatewayClientError(MedLedgerError):
    """A record gateway refused a request; the message is the gateway's own sentence and ``status`` its HTTP
    status (0 when no gateway answered)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class GatewayUnreachable(GatewayClientError):
    """No record gateway answers at the URL (connection refused, timeout, not a MedLedger gateway)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 0)


class AuditMismatch(MedLedgerError):
    """A gateway's audit log does not match the chain, or an entry has waited too long for its batch."""
