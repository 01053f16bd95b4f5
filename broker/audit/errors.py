"""The audit log's errors.

::

    BrokerError
    └── AuditError                anything the audit log refuses or cannot do
        ├── AuditUnavailableError (also Unavailable, 503) the entry is NOT durably logged:
        │                         the caller must not release data
        ├── AuditEntryError       (also InvalidInput, 422) an entry that cannot be logged as given
        ├── AuditNotFoundError    (also NotFound, 404) no such exchange, tree size or checkpoint
        ├── ProofError            (also InvalidInput, 422) a proof for sizes the log cannot prove
        ├── CheckpointError       a checkpoint note that does not parse or verify, or no log key
        ├── ReceiptError          a receipt that does not verify
        └── AuditQueryError       (also InvalidInput, 422) a bad search cursor, filter or date
"""

from __future__ import annotations

from broker.core.errors import BrokerError, InvalidInput, NotFound, Unavailable


class AuditError(BrokerError):
    title = "Audit log error"


class AuditUnavailableError(AuditError, Unavailable):
    """The append did not commit. No entry, no data released."""

    title = "Audit log unavailable"


class AuditEntryError(AuditError, InvalidInput):
    title = "Audit entry invalid"


class AuditNotFoundError(AuditError, NotFound):
    title = "Not in the audit log"


class ProofError(AuditError, InvalidInput):
    title = "Proof unavailable"


class CheckpointError(AuditError):
    title = "Checkpoint invalid"


class ReceiptError(AuditError):
    title = "Receipt invalid"


class AuditQueryError(AuditError, InvalidInput):
    """A search or export the log cannot answer as asked (bad cursor, filter or date)."""

    title = "Invalid audit query"
