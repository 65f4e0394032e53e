"""Start the whole sandbox: both simulators and the webhook receiver, wired together.

`deltek-procore sandbox up` and the tests use this; it returns the environment
variables of the configuration contract that point the connector at it.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltek_procore.sandbox import seed as seed_module
from deltek_procore.sandbox.deltek_sim import DeltekSimulator
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.procore_sim import ProcoreSimulator
from deltek_procore.sandbox.server import RunningServer, serve_in_thread

WEBHOOK_SECRET_ENV = "DELTEK_PROCORE_WEBHOOK_SECRET"  # noqa: S105 - a variable name

#: The contract variables that carry a sandbox's credentials, and the seed's public defaults.
CREDENTIAL_DEFAULTS: dict[str, str] = {
    "PROCORE_CLIENT_ID": seed_module.PROCORE_CLIENT_ID,
    "PROCORE_CLIENT_SECRET": seed_module.PROCORE_CLIENT_SECRET,
    "DELTEK_USERNAME": seed_module.DELTEK_USERNAME,
    "DELTEK_PASSWORD": seed_module.DELTEK_PASSWORD,
    "DELTEK_CLIENT_ID": seed_module.DELTEK_CLIENT_ID,
    "DELTEK_CLIENT_SECRET": seed_module.DELTEK_CLIENT_SECRET,
}


def sandbox_credentials(label: str) -> dict[str, str]:
    """Credentials of their own for one sandbox pair (one demo or test tenant), so that a
    value reaching another tenant's runs is detectable; the secrets are random per call."""
    token = secrets.token_urlsafe(12)
    return {
        "PROCORE_CLIENT_ID": f"sandbox-{label}-procore-client",
        "PROCORE_CLIENT_SECRET": f"sandbox-{label}-procore-secret-{token}",
        "DELTEK_USERNAME": f"api-{label}",
        "DELTEK_PASSWORD": f"sandbox-{label}-deltek-password-{token}",
        "DELTEK_CLIENT_ID": f"sandbox+{label}/client=",
        "DELTEK_CLIENT_SECRET": f"sandbox-{label}-deltek-client-secret-{token}",
    }


@dataclass
class Sandbox:
    data: Any
    procore: ProcoreSimulator
    deltek: DeltekSimulator
    procore_server: RunningServer
    deltek_server: RunningServer
    mappings_path: Path
    webhook_secret: str
    receiver_server: RunningServer | None = None
    env: dict[str, str] = field(default_factory=dict)
    started_in_s: float = 0.0
    hook_id: int | None = None  # the Procore hook pointing at the receiver, once registered
    webhook_note: str = ""  # why no hook was registered, when none was

    @property
    def webhook_url(self) -> str | None:
        return f"{self.receiver_server.url}/webhooks/procore" if self.receiver_server else None

    def stop(self) -> None:
        for server in (self.receiver_server, self.procore_server, self.deltek_server):
            if server is not None:
                server.stop()
        close = getattr(self.procore, "close", None)
        if close:
            close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(
    *,
    records: int = 2000,
    seed: int = 42,
    procore_port: int | None = None,
    deltek_port: int | None = None,
    workdir: str | os.PathLike[str] | None = None,
    procore_faults: Faults | None = None,
    deltek_faults: Faults | None = None,
    hourly_limit: int = 3600,
    spike_limit: int = 100,
    receiver_store: Any | None = None,
    receiver_port: int | None = None,
    webhooks_permission: bool = True,
    end_month: str = "2026-10",
    credentials: dict[str, str] | None = None,
    **procore_kwargs: Any,
) -> Sandbox:
    """Seed both simulators, serve them on loopback, write the sandbox mapping file.

    With `receiver_store` (a StateStore) the webhook receiver runs too, and a Procore
    hook pointing at it is registered so record changes reach the connector. With
    `webhooks_permission=False` the Procore service account lacks the "Webhooks API"
    permission: the webhooks config API answers 403 and no hook is registered.
    `credentials` (keys of CREDENTIAL_DEFAULTS, e.g. from sandbox_credentials) replace the
    seed's public ones on both simulators and in `env`.
    """
    began = time.perf_counter()
    data = seed_module.build(records=records, seed=seed, end_month=end_month)
    unknown = sorted(set(credentials or {}) - set(CREDENTIAL_DEFAULTS))
    if unknown:
        raise ValueError(f"credentials: unknown variable(s) {', '.join(unknown)}")
    creds = {**CREDENTIAL_DEFAULTS, **(credentials or {})}
    procore = ProcoreSimulator(
        data,
        procore_faults or Faults(),
        hourly_limit=hourly_limit,
        spike_limit=spike_limit,
        webhooks_permission=webhooks_permission,
        client_id=creds["PROCORE_CLIENT_ID"],
        client_secret=creds["PROCORE_CLIENT_SECRET"],
        **procore_kwargs,
    )
    deltek = DeltekSimulator(
        data.deltek,
        deltek_faults or Faults(),
        username=creds["DELTEK_USERNAME"],
        password=creds["DELTEK_PASSWORD"],
        client_id=creds["DELTEK_CLIENT_ID"],
        client_secret=creds["DELTEK_CLIENT_SECRET"],
    )
    procore_server = serve_in_thread(procore.app, port=procore_port)
    deltek_server = serve_in_thread(deltek.app, port=deltek_port)
    folder = Path(workdir or Path.cwd() / ".dagster_home")
    folder.mkdir(parents=True, exist_ok=True)
    mappings_path = folder / "sandbox-mappings.yaml"
    mappings_path.write_text(data.mappings_yaml, encoding="utf-8")
    box = Sandbox(
        data=data,
        procore=procore,
        deltek=deltek,
        procore_server=procore_server,
        deltek_server=deltek_server,
        mappings_path=mappings_path,
        webhook_secret="Bearer sandbox-" + secrets.token_urlsafe(18),
    )
    box.env = {
        "PROCORE_AUTH_URL": f"{procore_server.url}/oauth/token",
        "PROCORE_API_URL": procore_server.url,
        "PROCORE_CLIENT_ID": creds["PROCORE_CLIENT_ID"],
        "PROCORE_CLIENT_SECRET": creds["PROCORE_CLIENT_SECRET"],
        "PROCORE_COMPANY_ID": str(seed_module.PROCORE_COMPANY_ID),
        "DELTEK_API_URL": f"{deltek_server.url}{seed_module.DELTEK_API_PATH}",
        "DELTEK_USERNAME": creds["DELTEK_USERNAME"],
        "DELTEK_PASSWORD": creds["DELTEK_PASSWORD"],
        "DELTEK_DATABASE": seed_module.DELTEK_DATABASE,
        "DELTEK_CLIENT_ID": creds["DELTEK_CLIENT_ID"],
        "DELTEK_CLIENT_SECRET": creds["DELTEK_CLIENT_SECRET"],
        "DELTEK_PROCORE_MAPPINGS": str(mappings_path),
        WEBHOOK_SECRET_ENV: box.webhook_secret,
    }
    if receiver_store is not None:
        from deltek_procore.webhooks.receiver import create_app

        box.receiver_server = serve_in_thread(
            create_app(receiver_store, box.webhook_secret), port=receiver_port
        )
        if webhooks_permission:
            register_sandbox_hook(box)
        else:
            box.webhook_note = (
                "no hook registered: the sandbox's service account has no 'Webhooks API' "
                "permission; the nightly poll covers changes"
            )
    box.started_in_s = time.perf_counter() - began
    return box


def register_sandbox_hook(box: Sandbox) -> None:
    """Point a Procore hook at the receiver, as `deltek-procore webhooks register` would.

    A 403/404 (the permission switched off by a fault) leaves no hook and says why in
    `box.webhook_note`; the sandbox still starts.
    """
    from deltek_procore.procore.client import ProcoreClient, ProcoreSettings
    from deltek_procore.webhooks.registration import register_webhooks

    client = ProcoreClient(
        ProcoreSettings(
            auth_url=box.env["PROCORE_AUTH_URL"],
            api_url=box.env["PROCORE_API_URL"],
            client_id=box.env["PROCORE_CLIENT_ID"],
            client_secret=box.env["PROCORE_CLIENT_SECRET"],
            company_id=int(box.env["PROCORE_COMPANY_ID"]),
        )
    )
    try:
        result = register_webhooks(client, box.webhook_url, box.webhook_secret)
    finally:
        client.close()
    box.hook_id = result.hook_id
    box.webhook_note = result.summary() if result.unavailable else ""


def sandbox_periods(box: Sandbox) -> list[str]:
    """The accounting months the seeded data spans, oldest first."""
    from deltek_procore.posting.periods import period_of

    kinds = {
        "requisitions": "requisition",
        "direct_costs": "direct_cost",
        "work_order_contracts": "work_order",
        "purchase_order_contracts": "purchase_order",
        "commitment_change_orders": "change_order",
    }
    found: set[str] = set()
    for key, kind in kinds.items():
        for record in box.data.procore.get(key, []):
            period = period_of(kind, record)
            if period:
                found.add(period)
    return sorted(found)
