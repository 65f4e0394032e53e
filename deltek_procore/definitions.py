"""The Dagster code location (see workspace.yaml and pyproject's [tool.dagster])."""

from __future__ import annotations

import dagster as dg

from deltek_procore.defs.assets import ALL_ASSETS
from deltek_procore.defs.checks import completeness_checks
from deltek_procore.defs.jobs import sync_job
from deltek_procore.defs.resources import (
    DeltekResource,
    MappingResource,
    ProcoreResource,
    StateStoreResource,
)
from deltek_procore.defs.review import review_decision
from deltek_procore.defs.schedules import nightly_catch_up, nightly_reconciliation
from deltek_procore.defs.sensors import procore_webhook_sensor
from deltek_procore.defs.summary import daily_summary, daily_summary_job, daily_summary_schedule


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*ALL_ASSETS, daily_summary],
        asset_checks=completeness_checks(),
        jobs=[sync_job, daily_summary_job, review_decision],
        sensors=[procore_webhook_sensor, nightly_catch_up],
        schedules=[nightly_reconciliation, daily_summary_schedule],
        resources={
            "procore": ProcoreResource(),
            "deltek": DeltekResource(),
            "state": StateStoreResource(),
            "mapping": MappingResource(),
        },
    )


defs = build_definitions()
