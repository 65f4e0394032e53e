"""GL account validation in translation: only Deltek's own word refuses an account.

GLSummary lists accounts with activity, so an account missing from it is no evidence;
one it lists with an inactive Status is refused with a reason that says so.
"""

from __future__ import annotations

import pytest

from deltek_procore.mapping.accounts import account_split, account_statuses
from deltek_procore.posting.translate import MappingContext, Refusal, _check_account


def ctx(accounts: dict[str, str] | None) -> MappingContext:
    return MappingContext(
        projects={}, vendors={}, vendor_problems={}, cost_codes={}, cost_types={},
        commitment_line_types={}, commitment_vendors={}, resolve_account=lambda c, t: None,
        accounts=accounts,
    )  # fmt: skip


@pytest.mark.parametrize("accounts", [None, {}, {"5100": "A"}])
def test_absence_from_glsummary_is_never_a_refusal(accounts) -> None:
    _check_account(ctx(accounts), "5400", "for cost code 03-300 / cost type E")


def test_an_account_glsummary_lists_as_active_passes() -> None:
    _check_account(ctx({"5400": "A"}), "5400", "for cost code 03-300 / cost type E")


@pytest.mark.parametrize("status", ["I", "D"])
def test_an_account_listed_inactive_is_refused_in_deltek_words(status) -> None:
    with pytest.raises(Refusal) as refused:
        _check_account(ctx({"5950": status}), "5950", "(commitment offset)")
    reason = str(refused.value)
    assert reason.startswith("GL account 5950 (commitment offset) is inactive in Deltek")
    assert f"GLSummary lists it with Status {status}" in reason
    assert "reactivate it in Deltek or point the mapping file at an active account" in reason
    assert "chart of accounts" not in reason


def test_statuses_come_from_glsummary_rows_once_per_account() -> None:
    rows = [
        {"Period": 202510, "Account": "5100 ", "Status": "A"},
        {"Period": 202511, "Account": "5100", "Status": "A"},
        {"Period": 202401, "Account": "5950", "Status": "I"},
        {"Period": 202401, "Account": "2000"},  # no Status column: taken as active
    ]
    assert account_statuses(rows) == {"5100": "A", "5950": "I", "2000": "A"}
    assert account_statuses(None) is None
    split = account_split(["5400", "5100", "5950", "5100"], account_statuses(rows))
    assert split == {"confirmed": ["5100"], "not_yet_used": ["5400"], "inactive": ["5950"]}
    assert account_split(["5400"], None)["not_yet_used"] == ["5400"]
