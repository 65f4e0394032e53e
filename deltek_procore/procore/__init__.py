"""Procore client: token, pagination, pacing, retries and tolerant models."""

from .client import ProcoreClient, ProcoreSettings, ProcoreStats
from .errors import ProcoreAuthError, ProcoreError
from .models import (
    BillingPeriod,
    ChangeOrder,
    ChangeOrderLine,
    Commitment,
    CommitmentLine,
    Company,
    CostCode,
    CostType,
    DirectCost,
    DirectCostLine,
    Project,
    Requisition,
    RequisitionItem,
    Vendor,
)

__all__ = [
    "BillingPeriod",
    "ChangeOrder",
    "ChangeOrderLine",
    "Commitment",
    "CommitmentLine",
    "Company",
    "CostCode",
    "CostType",
    "DirectCost",
    "DirectCostLine",
    "ProcoreAuthError",
    "ProcoreClient",
    "ProcoreError",
    "ProcoreSettings",
    "ProcoreStats",
    "Project",
    "Requisition",
    "RequisitionItem",
    "Vendor",
]
