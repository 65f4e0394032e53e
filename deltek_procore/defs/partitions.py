"""Accounting months: the posting assets' partitions (keys like "2026-10")."""

from __future__ import annotations

import os

import dagster as dg

START_MONTH_ENV = "DELTEK_PROCORE_START_MONTH"
DEFAULT_START_MONTH = "2024-01"


def start_month() -> str:
    return os.environ.get(START_MONTH_ENV) or DEFAULT_START_MONTH


# end_offset=1: the month in progress is a partition too, so this month's spend posts now.
accounting_months = dg.MonthlyPartitionsDefinition(
    start_date=start_month(), fmt="%Y-%m", end_offset=1
)
