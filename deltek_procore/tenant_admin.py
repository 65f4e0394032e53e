"""Adding a tenant to the tenants file (`deltek-procore tenants add`).

The file is edited as text, appended to, so an operator's comments and layout stay. The
first time, today's single company is kept as the entry `default`: with no fields it goes on
reading today's un-suffixed environment variables, and its state rows (tenant `default`)
stay its own. Nothing secret is ever written: the new tenant's credentials are environment
variables named for it (`PROCORE_CLIENT_SECRET__ACME`) or the encrypted store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from deltek_procore.tenants import (
    DEFAULT_TENANT,
    TENANTS_ENV,
    Tenant,
    TenantsFileError,
    clear_cache,
    load_tenants,
)

#: The per-tenant variables that carry credentials (set them as <VARIABLE>__<TENANT>).
SECRET_VARIABLES = (
    "PROCORE_CLIENT_ID",
    "PROCORE_CLIENT_SECRET",
    "DELTEK_USERNAME",
    "DELTEK_PASSWORD",
    "DELTEK_CLIENT_ID",
    "DELTEK_CLIENT_SECRET",
)
HEADER = (
    "# deltek-procore tenants: one entry per Procore company <-> Deltek database.\n"
    "# Secrets are never written here: set <VARIABLE>__<TENANT> or use\n"
    "# `deltek-procore credentials set procore|deltek --tenant NAME`.\n"
)


def tenants_file_path(env: Mapping[str, str] | None = None) -> Path:
    """DELTEK_PROCORE_TENANTS, else tenants.yaml in DAGSTER_HOME (./.dagster_home)."""
    env = os.environ if env is None else env
    if env.get(TENANTS_ENV):
        return Path(env[TENANTS_ENV])
    return Path(env.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home") / "tenants.yaml"


def add_tenant(path: Path, entry: dict[str, Any]) -> Tenant:
    """Append `entry` to the tenants file at `path` (created with `default` first when it does
    not exist) and return the tenant as loaded; the file is left unchanged on any error."""
    entry = {k: v for k, v in entry.items() if v is not None}
    new = Tenant(**entry)  # validates the name and fields before the file is touched
    before = path.read_text(encoding="utf-8") if path.exists() else None
    if before is None:
        text = HEADER + "tenants:\n" + _item({"name": DEFAULT_TENANT}, "  ")
    else:
        names = [t.name for t in _load(path)]
        if new.name in names:
            raise TenantsFileError(f"{path}: a tenant named {new.name!r} exists already")
        text = before if before.endswith("\n") else before + "\n"
    text += _item(entry, _indent(text))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        loaded = {t.name: t for t in _load(path)}
    except TenantsFileError:
        if before is None:
            path.unlink()
        else:
            path.write_text(before, encoding="utf-8")
        raise
    return loaded[new.name]


def secret_variables(tenant: Tenant) -> list[str]:
    """The environment variables that hold `tenant`'s credentials."""
    return [v + tenant.suffix() for v in SECRET_VARIABLES]


def _load(path: Path) -> list[Tenant]:
    clear_cache()
    return load_tenants({TENANTS_ENV: str(path)})


def _indent(text: str) -> str:
    """The list indentation the file already uses (`  - name:` by default)."""
    found = re.search(r"^( *)- name:", text, flags=re.MULTILINE)
    return found.group(1) if found else "  "


def _item(entry: dict[str, Any], indent: str) -> str:
    body = yaml.safe_dump(
        [{k: str(v) if k != "name" else v for k, v in entry.items()}],
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )
    # safe_dump writes "- name: x\n  key: v"; shift every line to the file's indentation
    return "".join(indent + line + "\n" for line in body.splitlines())
