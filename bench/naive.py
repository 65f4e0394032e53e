"""The baseline: how a straightforward record-by-record integration would sync.

Same clients, same translation, same reference maps as the connector; only the I/O
strategy differs:
- Procore: list the ids, then one show call per record (plus its line items where
  the show answer lacks them, and the commitment lines a requisition bills against);
- Deltek: per approved record one look-up GET (the posted ledger filtered on vendor +
  invoice, or on RefNo) and, if absent, one POST of a batch holding just that voucher
  or entry. No read-back, no ledger of its own.

The look-up is the ledger half of `find_ap_vouchers` / `find_je`: the full methods also
read DataEntry/apLanding and every open batch, and with one voucher per batch that
grows with every post (quadratic). Charging the naive strategy one GET flatters it.

For large data sets only a sample of `limit` records (spread evenly over the listed
records, so the kind mix is kept) is processed, and the time per record is
extrapolated; listing and reference set-up are measured in full.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from typing import Any

from deltek_procore.deltek.errors import DeltekError
from deltek_procore.deltek.filters import Filter
from deltek_procore.mapping.config import load_mapping, mapping_hash
from deltek_procore.pipeline import ingest, reference
from deltek_procore.posting import payloads
from deltek_procore.posting.documents import Quarantine, Voucher
from deltek_procore.posting.periods import deltek_period, period_end
from deltek_procore.posting.translate import is_eligible, translate
from deltek_procore.procore.client import ProcoreClient
from deltek_procore.state.store import StateStore

LIST_PATHS = {
    "requisition": ("/rest/v1.1/requisitions", True),
    "direct_cost": ("/rest/v1.1/projects/{p}/direct_costs", False),
    "work_order": ("/rest/v1.0/work_order_contracts", True),
    "purchase_order": ("/rest/v1.0/purchase_order_contracts", True),
    "change_order": ("/rest/v1.0/projects/{p}/commitment_change_orders", False),
}
Ref = tuple[str, int, int]  # kind, project id, record id


def list_ids(procore: ProcoreClient, project_ids: list[int]) -> list[Ref]:
    """Every spend record's id, from the list endpoints (ids are all the naive keeps)."""
    out: list[Ref] = []
    for project in project_ids:
        for kind, (path, by_param) in LIST_PATHS.items():
            params = [("project_id", project)] if by_param else []
            for raw in procore.paginate(path.format(p=project), params):
                out.append((kind, project, int(raw["id"])))
    return out


def sample(refs: list[Ref], limit: int) -> list[Ref]:
    if len(refs) <= limit:
        return refs
    step = len(refs) / limit
    return [refs[int(i * step)] for i in range(limit)]


def show(procore: ProcoreClient, kind: str, project: int, record_id: int) -> dict[str, Any]:
    """One record by its show endpoint, with the lines it needs for translation."""
    base = [("project_id", project)]
    if kind == "requisition":
        raw = procore.get_json(f"/rest/v1.1/requisitions/{record_id}", base)
        record = {"project_id": project, **raw}
        if record.get("commitment_id") is not None:
            record["items"] = procore._with_cost_types(project, record)  # noqa: SLF001
        return record
    if kind == "direct_cost":
        raw = procore.get_json(f"/rest/v1.1/projects/{project}/direct_costs/{record_id}")
        record = {"project_id": project, **raw}
        if record.get("line_items") is None:
            path = f"/rest/v1.0/projects/{project}/direct_costs/{record_id}/line_items"
            record["line_items"] = list(procore.paginate(path))
        return record
    if kind in ("work_order", "purchase_order"):
        path = f"/rest/v1.0/{kind}_contracts/{record_id}"
        raw = procore.get_json(path, base)
        record = {"project_id": project, **raw, "kind": kind}
        if record.get("line_items") is None:
            record["line_items"] = list(procore.paginate(f"{path}/line_items", base))
        return record
    path = f"/rest/v1.0/projects/{project}/commitment_change_orders/{record_id}"
    record = {"project_id": project, **procore.get_json(path)}
    if record.get("line_items") is None:
        company = procore.settings.company_id
        lines = (
            f"/rest/v2.0/companies/{company}/projects/{project}"
            f"/commitment_change_orders/{record_id}/line_items"
        )
        record["line_items"] = list(procore.paginate(lines))
    return record


def look_up(deltek: Any, doc: Any) -> bool:
    """One GET on the posted ledger: is this voucher / entry already in Deltek?"""
    if isinstance(doc, Voucher):
        found = deltek.posted_ap(
            filters=[Filter("Vendor", doc.vendor), Filter("Invoice", doc.invoice)]
        )
    else:
        found = deltek.posted_je(filters=[Filter("RefNo", doc.ref_no)])
    return bool(found)


def post_one(deltek: Any, doc: Any, mapping: Any) -> None:
    """One batch holding one document."""
    key = payloads.master_key(doc, 1)
    code = deltek_period(doc.period)
    d = mapping.defaults
    if isinstance(doc, Voucher):
        batch = payloads.batch_name("NVAP", code, [key])
        deltek.create_ap_batch(
            payloads.ap_control(
                batch,
                [(doc, key)],
                period_code=code,
                liability_code=d.liability_code,
                bank_code=d.bank_code,
                pay_terms=d.voucher_pay_terms,
                company=d.company,
                end_date=period_end(doc.period),
            )
        )
    else:
        batch = payloads.batch_name("NVJE", code, [key])
        deltek.create_je_batch(
            payloads.je_control(
                batch,
                [(doc, key)],
                period_code=code,
                company=d.company,
                end_date=period_end(doc.period),
            )
        )


def _timed(fn: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - began


def _each_sampled(procore: ProcoreClient, refs: list[Ref]) -> Iterator[tuple[str, dict]]:
    for kind, project, record_id in refs:
        yield kind, show(procore, kind, project, record_id)


def run_naive(
    env: dict[str, str],
    periods: list[str],
    workdir: str,
    *,
    procore: ProcoreClient,
    deltek: Any,
    limit: int,
) -> dict[str, Any]:
    """Sync record by record; returns the measured and extrapolated figures."""
    store = StateStore(f"sqlite:///{workdir}/naive-state.db")
    mapping = load_mapping(env["DELTEK_PROCORE_MAPPINGS"])

    def setup() -> list[int]:
        for kind in ("project", "vendor", "cost_type"):
            ingest.ingest_company(procore, store, kind, full=True)
        project_ids = [r.record_id for r in store.staged("project")]
        ingest.ingest_projects(procore, store, "cost_code", project_ids, full=True)
        reference.refresh_deltek(deltek, store)
        reference.build_project_map(store, mapping)
        return project_ids

    project_ids, setup_s = _timed(setup)
    calls_before = procore.stats.calls
    refs, list_s = _timed(lambda: list_ids(procore, project_ids))
    list_calls = procore.stats.calls - calls_before
    chosen = sample(refs, limit)
    p_before, d_before = procore.stats.calls, deltek.stats.calls

    def process() -> int:
        staged = []
        for kind, raw in _each_sampled(procore, chosen):
            staged.append(ingest.to_staged(kind, ingest.parse(kind, raw)))
        store.stage(staged)  # the maps read what was fetched
        reference.build_vendor_map(store, mapping, deltek, run_id="naive")
        reference.build_gl_map(store, mapping)
        ctx = reference.mapping_context(store, mapping, mapping_hash(mapping))
        posted = 0
        for rec in staged:
            model = ingest.parse(rec.kind, rec.payload)
            if not is_eligible(rec.kind, model, ctx):
                continue
            doc = translate(rec.kind, model, ctx)
            if isinstance(doc, Quarantine):
                continue
            if look_up(deltek, doc):
                continue
            try:
                post_one(deltek, doc, mapping)
                posted += 1
            except DeltekError:
                continue
        return posted

    posted, sample_s = _timed(process)
    population = len(refs)
    per_record = sample_s / max(len(chosen), 1)
    projected = setup_s + list_s + per_record * population
    psession, dsession = procore._session, deltek._session  # noqa: SLF001
    return {
        "population": population,
        "sample": len(chosen),
        "posted": posted,
        "setup_wall_s": setup_s,
        "list_wall_s": list_s,
        "list_calls": list_calls,
        "sample_wall_s": sample_s,
        "projected_wall_s": projected,
        "records_per_s": population / projected if projected else 0.0,
        "procore_per_record": (procore.stats.calls - p_before) / max(len(chosen), 1),
        "deltek_per_record": (deltek.stats.calls - d_before) / max(len(chosen), 1),
        "procore_429": getattr(psession, "throttled", 0),
        "deltek_calls_client": dict(getattr(dsession, "calls", {})),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
