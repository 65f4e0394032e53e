"""Accounting months: the posting assets' partitions (keys like "2026-10"), one set per tenant
(`TenantScope.partitions`, from the tenant's first month)."""

from __future__ import annotations

import os

from deltek_procore.defs.scope import DEFAULT_START_MONTH, START_MONTH_ENV

__all__ = ["DEFAULT_START_MONTH", "START_MONTH_ENV", "start_month"]


def start_month() -> str:
    return os.environ.get(START_MONTH_ENV) or DEFAULT_START_MONTH


def __getattr__(name: str):
    if name == "accounting_months":  # the implicit tenant's, as before tenants
        from deltek_procore.defs.tenant import implicit_parts

        return implicit_parts().scope.partitions
    raise AttributeError(name)
