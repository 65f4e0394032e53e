"""Completeness checks a person can trust: from Procore's side, not from our own logs.

- `webhook_deliveries` (on procore_direct_costs, the main webhook-fed asset): Procore's
  delivery history for our hook; fails listing every event that never reached the
  receiver (discarded = Procore gave up; failing = still retrying). Without the "Webhooks
  API" permission (403/404) it passes with a warning saying so: webhooks are optional and
  the nightly poll covers them. A check that cannot run never fails the run.
- `ledger_complete` (per accounting month, on both posting assets): fails when an
  approved Procore record of the month has no ledger row at all.

`build_checks(scope)` makes them for one tenant (the factory registers them);
`completeness_checks()` are the implicit tenant's.
"""

# No `from __future__ import annotations`: Dagster reads resource annotations at runtime.
from collections.abc import Callable
from typing import Any

import dagster as dg

from deltek_procore.defs.resources import MappingResource, ProcoreResource, StateStoreResource
from deltek_procore.defs.scope import TenantScope
from deltek_procore.pipeline.completeness import check_deliveries, missing_from_ledger
from deltek_procore.pipeline.postings import AP_KINDS, JE_KINDS
from deltek_procore.procore.errors import ProcoreError
from deltek_procore.webhooks.access import POLL_COVERS

TABLE_ROWS = 50
EVENT_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("key", "string"),
        dg.TableColumn("resource", "string"),
        dg.TableColumn("resource_id", "int"),
        dg.TableColumn("event_type", "string"),
        dg.TableColumn("outcome", "string"),
        dg.TableColumn("attempts", "int"),
        dg.TableColumn("last_response", "string"),
        dg.TableColumn("last_attempt_at", "string"),
    ]
)
GAP_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("kind", "string"),
        dg.TableColumn("record_id", "int"),
        dg.TableColumn("period", "string"),
        dg.TableColumn("status", "string"),
        dg.TableColumn("reason", "string"),
    ]
)


def _table(rows: list[dict[str, Any]], schema: dg.TableSchema) -> dg.TableMetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord(r) for r in rows[:TABLE_ROWS]], schema=schema
    )


def deliveries_result(found_of: Callable[[], Any]) -> dg.AssetCheckResult:
    """webhook_deliveries' result from Procore's delivery history (read by `found_of`)."""
    try:
        found = found_of()
    except ProcoreError as exc:  # Procore down or refusing: report it, never fail the run
        status = exc.status if exc.status is not None else "no response"
        return _warning(
            f"delivery history could not be read ({status}: {exc.detail or exc.message}): "
            f"{POLL_COVERS}",
            passed=False,
        )
    if found.unavailable:
        return _warning(found.unavailable)
    if not found.hooks:
        return _warning("no deltek-procore hook registered; the nightly poll covers all")
    missing = found.missing
    discarded = [e for e in missing if e.outcome == "discarded"]
    lines = [
        f"- {e.resource_name} {e.resource_id} {e.event_type} ({e.outcome}, {e.attempts} tries)"
        for e in missing[:20]
    ]
    detail = (
        f"{len(discarded)} event(s) discarded by Procore, {len(missing) - len(discarded)} "
        "still failing; the nightly reconciliation re-reads them by updated_at"
        if missing
        else f"every event of hook(s) {', '.join(map(str, found.hooks))} reached the receiver"
    )
    return dg.AssetCheckResult(
        passed=not missing,
        severity=dg.AssetCheckSeverity.ERROR if discarded else dg.AssetCheckSeverity.WARN,
        description=detail,
        metadata={
            "detail": detail,
            "undelivered": len(missing),
            "discarded": len(discarded),
            "events": dg.MetadataValue.md("\n".join(lines) or "none"),
            "table": _table([e.row() for e in missing], EVENT_SCHEMA),
        },
    )


def _warning(detail: str, passed: bool = True) -> dg.AssetCheckResult:
    """A WARN result whose description (and `detail`) says why nothing could be checked."""
    return dg.AssetCheckResult(
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=detail,
        metadata={"detail": detail},
    )


def _describe(periods: list[str] | None) -> str:
    if not periods:
        return "all"
    return ", ".join(periods) if len(periods) < 4 else f"{periods[0]}..{periods[-1]}"


def build_checks(scope: TenantScope) -> list[dg.AssetChecksDefinition]:
    """The completeness checks of one tenant, on its own assets and months."""
    tenant = scope.tenant

    @dg.asset_check(
        asset=scope.key("procore_direct_costs"),
        name="webhook_deliveries",
        description="Procore's delivery history for our hook: every event reached the receiver.",
    )
    def webhook_deliveries(
        procore: ProcoreResource, state: StateStoreResource
    ) -> dg.AssetCheckResult:
        return deliveries_result(
            lambda: check_deliveries(procore.client(tenant), state.store(tenant))
        )

    def ledger_check(asset: str, kinds: tuple[str, ...]) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=scope.key(asset),
            name="ledger_complete",
            partitions_def=scope.partitions,
            description="Every approved Procore record of the month has a ledger row.",
        )
        def _check(
            context: dg.AssetCheckExecutionContext,
            state: StateStoreResource,
            mapping: MappingResource,
        ) -> dg.AssetCheckResult:
            partitioned = context.has_partition_key or context.has_partition_key_range
            periods = list(context.partition_keys) if partitioned else None
            types = mapping.load(tenant).defaults.direct_cost_types
            gaps = missing_from_ledger(
                state.store(tenant), periods, kinds=kinds, direct_cost_types=types
            )
            return ledger_result(gaps, periods)

        return _check

    return [
        webhook_deliveries,
        ledger_check("deltek_ap_invoices", AP_KINDS),
        ledger_check("deltek_commitment_journal_entries", JE_KINDS),
    ]


def ledger_result(gaps: list[Any], periods: list[str] | None) -> dg.AssetCheckResult:
    """ledger_complete's result: the approved records of `periods` without a ledger row."""
    return dg.AssetCheckResult(
        passed=not gaps,
        description=f"{len(gaps)} approved record(s) of {_describe(periods)} have no ledger "
        "row: " + ", ".join(f"{g.kind} {g.record_id}" for g in gaps[:10])
        if gaps
        else f"every approved record of {_describe(periods)} is in the ledger",
        metadata={
            "periods": _describe(periods),
            "missing": len(gaps),
            "detail": dg.MetadataValue.md(
                "\n".join(f"- {g.kind} {g.record_id} ({g.period})" for g in gaps[:20])
                or "every approved record is in the ledger"
            ),
            "table": _table([g.row() for g in gaps], GAP_SCHEMA),
        },
    )


def completeness_checks() -> list[dg.AssetChecksDefinition]:
    """The implicit tenant's checks (as `definitions.py` registered them before tenants)."""
    from deltek_procore.defs.tenant import implicit_parts

    return list(implicit_parts().checks)


def __getattr__(name: str) -> Any:
    """The implicit tenant's checks under their names before tenants."""
    index = {"webhook_deliveries": 0, "ap_ledger_complete": 1, "je_ledger_complete": 2}
    if name not in index:
        raise AttributeError(name)
    return completeness_checks()[index[name]]
