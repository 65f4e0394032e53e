"""The Dagster code location (see workspace.yaml and pyproject's [tool.dagster]).

One set of definitions per tenant of `load_tenants()` (the tenants file named by
DELTEK_PROCORE_TENANTS, else the one implicit tenant of today's environment), built by
`defs.tenant.build_tenant_definitions`, plus the deployment-wide daily summary and one
resource per external system, shared by all tenants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

from deltek_procore.defs.resources import (
    DeltekResource,
    MappingResource,
    ProcoreResource,
    StateStoreResource,
)
from deltek_procore.defs.summary import build_summary_definitions
from deltek_procore.defs.tenant import build_tenant_definitions, implicit_parts, implicit_summary
from deltek_procore.tenants import Tenant, load_tenants


def build_definitions(
    tenants: Sequence[Tenant] | None = None, env: Mapping[str, str] | None = None
) -> dg.Definitions:
    """Every tenant's definitions merged; `tenants` default to `load_tenants(env)`."""
    tenants = list(load_tenants(env) if tenants is None else tenants)
    if len(tenants) == 1 and tenants[0].implicit and env is None:
        # the very objects defs/* export under their names before tenants
        parts = implicit_parts()
        asset, job, schedule = implicit_summary()
        summary = dg.Definitions(assets=[asset], jobs=[job], schedules=[schedule])
        per_tenant = [parts.definitions()]
    else:
        summary = build_summary_definitions(tenants)
        per_tenant = [build_tenant_definitions(t, env) for t in tenants]
    resources = dg.Definitions(
        resources={
            "procore": ProcoreResource(),
            "deltek": DeltekResource(),
            "state": StateStoreResource(),
            "mapping": MappingResource(),
        }
    )
    return dg.Definitions.merge(*per_tenant, summary, resources)


defs = build_definitions()
