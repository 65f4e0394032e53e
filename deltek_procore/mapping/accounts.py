"""Which GL accounts Deltek has confirmed, from GLSummary, and which it has not used yet.

GLSummary is an activity summary (rows per period and account), not a chart of accounts:
an account that exists but has no postings yet is absent from it (docs/api/deltek.md, GL
accounts). So an account seen there is confirmed, one listed with an inactive Status is
Deltek's word against it, and one not seen is only "not yet used in Deltek": never an
error, because Deltek's own validation when the batch posts is the authority.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deltek_procore.mapping.config import MappingFile

CONFIRMED = "confirmed"
NOT_YET_USED = "not yet used in Deltek"
INACTIVE = "inactive in Deltek"


def account_statuses(rows: Iterable[Mapping[str, Any]] | None) -> dict[str, str] | None:
    """Account -> Status from GLSummary rows; None when GLSummary could not be read."""
    if rows is None:
        return None
    return {str(row.get("Account")).strip(): str(row.get("Status") or "A") for row in rows}


def mapped_accounts(
    mapping: MappingFile, pairs: Iterable[Mapping[str, Any]] | None = None
) -> list[str]:
    """The accounts the mapping file sends spend to: every rule's (or only those the
    `pairs` in use resolve to), the commitment offset and the retainage account."""
    if pairs is None:
        accounts = [rule.account for rule in mapping.gl_accounts]
    else:
        accounts = [str(row["account"]) for row in pairs if row.get("account")]
    accounts.append(mapping.defaults.commitment_offset_account)
    if mapping.defaults.retainage_account:
        accounts.append(mapping.defaults.retainage_account)
    return sorted(set(accounts))


def account_split(
    accounts: Iterable[str], statuses: Mapping[str, str] | None
) -> dict[str, list[str]]:
    """{"confirmed": [...], "not_yet_used": [...], "inactive": [...]}, each sorted."""
    seen = statuses or {}
    out: dict[str, list[str]] = {"confirmed": [], "not_yet_used": [], "inactive": []}
    for account in sorted(set(accounts)):
        status = seen.get(account)
        key = "not_yet_used" if status is None else "confirmed" if status == "A" else "inactive"
        out[key].append(account)
    return out
