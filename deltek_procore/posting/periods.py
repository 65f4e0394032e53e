"""The date rule: which accounting month a Procore record belongs to.

Each record lands in exactly one period, decided by one date (first present wins):

| record                       | date used                                          |
|------------------------------|----------------------------------------------------|
| subcontractor invoice        | billing_date, else requisition_end, else created_at |
| direct cost                  | direct_cost_date, else received_date, else created_at |
| work order / purchase order  | contract_date, else created_at                      |
| commitment change order      | reviewed_at (approval), else created_at             |

The Deltek period is the calendar month as YYYYPP (fiscal year = calendar year).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "requisition": ("billing_date", "requisition_end", "created_at"),
    "direct_cost": ("direct_cost_date", "received_date", "created_at"),
    "work_order": ("contract_date", "created_at"),
    "purchase_order": ("contract_date", "created_at"),
    "change_order": ("reviewed_at", "created_at"),
}


def as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return date.fromisoformat(text[:10])


def record_date(kind: str, record: Any) -> date | None:
    """The date that decides the period, read off a model or a dict."""
    for name in DATE_FIELDS[kind]:
        value = record.get(name) if isinstance(record, dict) else getattr(record, name, None)
        found = as_date(value)
        if found:
            return found
    return None


def period_of(kind: str, record: Any) -> str | None:
    found = record_date(kind, record)
    return f"{found.year:04d}-{found.month:02d}" if found else None


def deltek_period(period: str) -> int:
    year, month = period.split("-")
    return int(year) * 100 + int(month)


def period_end(period: str) -> date:
    year, month = (int(p) for p in period.split("-"))
    if month == 12:
        return date(year, 12, 31)
    return date.fromordinal(date(year, month + 1, 1).toordinal() - 1)


def parse_period(text: str) -> str:
    """Validate a YYYY-MM argument and return it normalised."""
    try:
        parsed = datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise ValueError(f"period must look like YYYY-MM (e.g. 2026-10), got {text!r}") from None
    return f"{parsed.year:04d}-{parsed.month:02d}"


def periods_between(first: str, last: str) -> list[str]:
    y, m = (int(p) for p in parse_period(first).split("-"))
    ey, em = (int(p) for p in parse_period(last).split("-"))
    if (y, m) > (ey, em):
        raise ValueError(f"--from {first} is after --to {last}")
    out = []
    while (y, m) <= (ey, em):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
