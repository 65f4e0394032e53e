"""Which tenant's inbox an event goes to: one receiver for every tenant of the deployment.

Each tenant's Authorization value is its ``DELTEK_PROCORE_WEBHOOK_SECRET`` as it sees it
(``DELTEK_PROCORE_WEBHOOK_SECRET__<TENANT>`` for a tenant of the tenants file, the plain
variable for the implicit one); its events are stored in the state store scoped to it. The
implicit tenant is served exactly as before tenants: today's path, today's value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from deltek_procore.tenants import Tenant
from deltek_procore.webhooks.receiver import WEBHOOK_PATH, TenantInbox, serve

WEBHOOK_SECRET_ENV = "DELTEK_PROCORE_WEBHOOK_SECRET"  # noqa: S105 - a variable name


class RoutingError(Exception):
    """A tenant cannot receive webhooks (no Authorization value); names the variable."""


def secret_variable(tenant: Tenant) -> str:
    return WEBHOOK_SECRET_ENV if tenant.implicit else WEBHOOK_SECRET_ENV + tenant.suffix()


def tenant_path(tenant: Tenant) -> str:
    """Where Procore delivers a tenant's events: today's path for the implicit tenant."""
    return WEBHOOK_PATH if tenant.implicit else f"{WEBHOOK_PATH}/{tenant.name}"


def tenant_inboxes(
    tenants: Sequence[Tenant],
    store_for: Callable[[Tenant], Any],
    env: Mapping[str, str] | None = None,
) -> list[TenantInbox]:
    """Each tenant's endpoint; `store_for(tenant)` is its inbox (its scoped state store)."""
    missing = [
        secret_variable(t) for t in tenants if not t.environment(env).get(WEBHOOK_SECRET_ENV)
    ]
    if missing:
        raise RoutingError(f"set {', '.join(missing)} to the Authorization value Procore will send")
    return [
        TenantInbox(t.name, store_for(t), t.environment(env)[WEBHOOK_SECRET_ENV]) for t in tenants
    ]


def serve_tenants(
    tenants: Sequence[Tenant],
    store_for: Callable[[Tenant], Any],
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    env: Mapping[str, str] | None = None,
    announce: Callable[[str], None] = print,
    **options: Any,
) -> None:
    """Run one receiver for `tenants` until interrupted (`deltek-procore webhooks serve`)."""
    inboxes = tenant_inboxes(tenants, store_for, env)
    base = f"http://{host}:{port}"
    if len(tenants) == 1 and tenants[0].implicit:
        announce(f"receiving Procore webhooks on {base}{WEBHOOK_PATH}")
    else:
        for tenant in tenants:
            announce(
                f"tenant {tenant.name}: receiving Procore webhooks on {base}{tenant_path(tenant)}"
            )
    serve(None, None, host, port, tenants=inboxes, **options)
