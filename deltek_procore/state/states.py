"""One vocabulary for what a plan decides, what a record's ledger row says, and why.

The enums are `str` subclasses, so the values stored in the state tables and shown by
`status` are the plain words below, and comparisons with those words keep working.
"""

from __future__ import annotations

from enum import Enum


class Action(str, Enum):
    """What the plan decides for one record revision."""

    CREATE = "create"
    ADOPT = "adopt"
    SKIP = "skip"
    ADJUST = "adjust"
    REVERSE = "reverse"
    REVIEW = "review"
    QUARANTINE = "quarantine"
    IGNORE = "ignore"
    FAIL = "fail"  # something it needs failed in this run (e.g. its vendor's firm): retry
    DISABLE = "disable"  # its project is switched off in the mapping file

    def __str__(self) -> str:
        return self.value


class State(str, Enum):
    """A ledger row's status."""

    STAGED = "staged"
    MAPPED = "mapped"
    POSTING = "posting"
    POSTED = "posted"
    ADOPTED = "adopted"
    ADJUSTED = "adjusted"
    QUARANTINED = "quarantined"
    FAILED = "failed"
    ABORTED = "aborted"
    IGNORED = "ignored"
    REVIEW = "review"
    SUPERSEDED = "superseded"
    # Found by the period reconciliation: the ledger says Deltek holds it, Deltek does not
    # (a deleted or rejected batch), or holds it with other lines (edited in Deltek).
    MISSING = "missing"
    CHANGED = "changed"
    DISABLED = "disabled"  # staged, never planned: its project is `enabled: false`

    def __str__(self) -> str:
        return self.value


# In Deltek, as the connector last verified it.
IN_DELTEK = (State.POSTED, State.ADOPTED, State.ADJUSTED)
# Nothing more will be written to Deltek for this revision.
DONE = frozenset({State.POSTED, State.ADOPTED, State.ADJUSTED, State.IGNORED, State.SUPERSEDED})
# Waiting for a person or for the next run: a check that sees one of these WARNs.
OPEN = (
    State.QUARANTINED,
    State.FAILED,
    State.ABORTED,
    State.REVIEW,
    State.POSTING,
    State.MISSING,
    State.CHANGED,
)


class Finding(str, Enum):
    """What the period reconciliation found when it compared Deltek with the ledger."""

    MISSING = "missing"  # the ledger says posted; Deltek shows nothing under its key
    CHANGED = "changed"  # Deltek shows it with other amounts, accounts or projects
    UNKNOWN = "unknown"  # Deltek shows a document with our key that the ledger does not know
    DUPLICATE = "duplicate"  # Deltek shows more than one document under one key

    def __str__(self) -> str:
        return self.value


class Reason(str, Enum):
    """Why a record is held back, as a code the checks can count (never the message text)."""

    NO_PROJECT = "no_project"
    NO_VENDOR = "no_vendor"
    NO_ACCOUNT = "no_account"
    BAD_AMOUNT = "bad_amount"
    DUPLICATE_INVOICE = "duplicate_invoice"
    DELTEK_REJECTED = "deltek_rejected"
    DELTEK_DIFFERS = "deltek_differs"
    LATE_CHANGE = "late_change"
    OTHER = "other"

    def __str__(self) -> str:
        return self.value
