"""The real `sync` job against the sandbox: exactly once, right targets, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from deltek_procore.mapping.config import parse_mapping
from deltek_procore.mapping.matching import normalize_name
from deltek_procore.mapping.rules import compile_rules
from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.conftest import write_dagster_yaml

RECORDS = 400
APPROVED = {"approved", "approved_as_noted"}


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A sandbox, a Dagster instance and a state store; SQLite or PostgreSQL for both."""
    home = tmp_path / "dagster_home"
    if request.param == "postgres":
        state_url = request.getfixturevalue("pg_url")
        write_dagster_yaml(home, request.getfixturevalue("pg_database"))
    else:
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        write_dagster_yaml(home)
    box = start_sandbox(
        records=RECORDS, seed=7, workdir=tmp_path, spike_limit=2000, hourly_limit=100_000
    )
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DELTEK_PROCORE_STATE_URL", state_url)
    yield box
    box.stop()


def run_sync(periods: list[str], run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    from deltek_procore.definitions import defs

    tags = {
        "dagster/asset_partition_range_start": periods[0],
        "dagster/asset_partition_range_end": periods[-1],
    }
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("sync").execute_in_process(
            instance=instance, tags=tags, run_config=run_config or {}
        )
    assert result.success
    return result


def g703_gross(item: dict) -> Decimal:
    """Billed this period on an AIA G703 line: stored materials are a running balance."""
    return Decimal(item["total_completed_and_stored_to_date"]) - Decimal(
        item["total_completed_and_stored_to_date_from_previous"]
    )


def g703_retainage(item: dict) -> Decimal:
    """Retainage held this period: on work and on newly stored materials, less releases."""
    return (
        Decimal(item["work_completed_retainage_retained_this_period"])
        - Decimal(item["work_completed_retainage_released_this_period"])
        + Decimal(item["materials_stored_retainage_new_materials"])
        - Decimal(item["materials_stored_retainage_released_this_period"])
    )


def expected_vouchers(box, periods: set[str]) -> dict[str, dict]:
    """Approved, mappable AP records of `periods`, derived from the seed data directly."""
    data = box.data.procore
    mapping = parse_mapping(box.data.mappings_yaml)
    rules = compile_rules(mapping.gl_accounts)
    codes = {c["id"]: c["full_code"] for c in data["cost_codes"]}
    types = {t["id"]: t["code"] for t in data["line_item_types"]}
    projects = {p["id"]: p["project_number"] for p in data["projects"]}
    vendors = {v["id"]: v for v in data["vendors"]}
    line_type = {
        line["id"]: line["line_item_type"]["id"]
        if line.get("line_item_type")
        else line.get("line_item_type_id")
        for kind in ("work_order_contracts", "purchase_order_contracts")
        for c in data[kind]
        for line in c.get("line_items", [])
    }
    commitment_vendor = {
        c["id"]: c["vendor"]["id"]
        for k in ("work_order_contracts", "purchase_order_contracts")
        for c in data[k]
    }
    unmatched = box.data.summary["unmatched_project"]
    out: dict[str, dict] = {}

    def account_ok(code_id, type_id) -> bool:
        return rules.resolve(codes[code_id], types.get(type_id, "")) is not None

    for req in data["requisitions"]:
        period = (req.get("billing_date") or "")[:7]
        if req["status"] not in APPROVED or period not in periods:
            continue
        if projects[req["project_id"]] == unmatched:
            continue
        items = [i for i in req["items"] if g703_gross(i)]
        if not items or not all(
            account_ok(i["cost_code_id"], line_type[i["line_item_id"]]) for i in items
        ):
            continue
        gross = sum(g703_gross(i) for i in req["items"])
        retainage = sum(g703_retainage(i) for i in req["items"])
        vendor = vendors[req.get("vendor_id") or commitment_vendor[req["commitment_id"]]]
        if not (vendor.get("name") or "").strip():
            continue
        out[req["invoice_number"]] = {
            "total": gross - retainage,
            "vendor": vendor,
            "project": projects[req["project_id"]],
        }
    for cost in data["direct_costs"]:
        period = (cost.get("direct_cost_date") or "")[:7]
        if (
            cost["status"] != "approved"
            or cost["direct_cost_type"] != "invoice"
            or period not in periods
        ):
            continue
        if projects[cost["project_id"]] == unmatched:
            continue
        lines = cost["line_items"]
        if not all(account_ok(ln["cost_code"]["id"], ln["line_item_type"]["id"]) for ln in lines):
            continue
        vendor = vendors[cost["vendor_id"]]
        if not (vendor.get("name") or "").strip():
            continue
        out[cost["invoice_number"]] = {
            "total": Decimal(cost["grand_total"]),
            "vendor": vendor,
            "project": projects[cost["project_id"]],
        }
    return out


def deltek_vouchers(box) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for voucher in box.deltek.ap_vouchers():
        found.setdefault(voucher["Invoice"], []).append(voucher)
    return found


def voucher_total(voucher: dict) -> Decimal:
    return sum(Decimal(str(d["Amount"])) for d in voucher["apDetail"]).quantize(Decimal("0.01"))


def test_every_approved_record_lands_once_with_the_right_targets(env) -> None:
    box = env
    periods = sandbox_periods(box)
    run_sync(periods)
    expected = expected_vouchers(box, set(periods))
    found = deltek_vouchers(box)
    assert expected, "the sandbox must hold approved vouchers"
    assert set(found) == set(expected), set(found) ^ set(expected)
    firms = {f["Vendor"]: f for f in box.deltek.firms() if f.get("Vendor")}
    phased = box.data.summary["phased_project"]
    for invoice, want in expected.items():
        assert len(found[invoice]) == 1, f"{invoice} posted {len(found[invoice])} times"
        voucher = found[invoice][0]
        assert voucher_total(voucher) == want["total"], invoice
        firm = firms[voucher["Vendor"]]
        if want["vendor"]["name"] != "Red Rose Rebar":  # the mapping-file override
            assert normalize_name(firm["Name"]) == normalize_name(want["vendor"]["name"])
        cost_lines = [d for d in voucher["apDetail"] if d["WBS1"].strip()]
        assert cost_lines and all(d["WBS1"] == want["project"] for d in cost_lines)
        if want["project"] == phased:
            assert all(d["WBS2"] == "CONST" for d in cost_lines)
        retainage_lines = [d for d in voucher["apDetail"] if not d["WBS1"].strip()]
        assert all(d["Account"] == "2160" and d["Amount"] < 0 for d in retainage_lines)
    # Journal entries: every one balanced, each RefNo once.
    refs = Counter(je["RefNo"] for je in box.deltek.journal_entries())
    assert refs and max(refs.values()) == 1
    for je in box.deltek.journal_entries():
        debit = sum(Decimal(str(d["DebitAmount"])) for d in je["jeDetail"])
        credit = sum(Decimal(str(d["CreditAmount"])) for d in je["jeDetail"])
        assert debit == credit and debit > 0


def test_one_month_posts_only_that_month_and_a_second_run_posts_nothing(env) -> None:
    box = env
    periods = sandbox_periods(box)
    month = periods[len(periods) // 2]
    run_sync([month])
    expected = expected_vouchers(box, {month})
    found = deltek_vouchers(box)
    assert set(found) == set(expected)
    calls_before = box.deltek.call_counts().get("POST DataEntry/apControl", 0)
    run_sync([month])
    assert deltek_vouchers(box) == found
    assert box.deltek.call_counts().get("POST DataEntry/apControl", 0) == calls_before
    report = StateStore().get_reference("report:deltek_ap_invoices")
    assert report["counts"].get("posted", 0) == 0


def test_unmapped_line_is_quarantined_then_posts_once_its_rule_is_added(env) -> None:
    box = env
    periods = sandbox_periods(box)
    run_sync(periods)
    store = StateStore()
    held = [
        r
        for r in store.ledger_rows(statuses=["quarantined"])
        if "09-250 / cost type E" in (r.reason or "")
    ]
    assert held, "the seed has approved records on the unmapped pair"
    before = {v["Invoice"] for v in box.deltek.ap_vouchers()}
    mappings = Path(os.environ["DELTEK_PROCORE_MAPPINGS"])
    text = mappings.read_text()
    mappings.write_text(
        text.replace(
            "gl_accounts:\n",
            'gl_accounts:\n  - cost_code: "09-250"\n    cost_type: E\n    account: "5400"\n',
            1,
        )
    )
    run_sync(periods)
    after = deltek_vouchers(box)
    newly = set(after) - before
    assert newly, "fixed records must post"
    assert all(len(v) == 1 for v in after.values())
    for row in held:
        latest = store.latest(row.kind, [row.record_id])[row.record_id]
        assert latest.status in ("posted", "quarantined")  # quarantined only for another reason
        if latest.status == "quarantined":
            assert "09-250 / cost type E" not in latest.reason
    assert any(store.latest(r.kind, [r.record_id])[r.record_id].status == "posted" for r in held)


def test_crash_between_post_and_record_leaves_no_duplicate(
    env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deltek_procore.posting import apply as protocol

    box = env
    periods = sandbox_periods(box)[:6]
    original = protocol.Poster._record_posted
    crashed = {"n": 0}

    def crash_once(self, *args, **kwargs):
        if crashed["n"] == 0:
            crashed["n"] += 1
            raise RuntimeError("simulated crash after Deltek accepted the batch")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(protocol.Poster, "_record_posted", crash_once)
    from deltek_procore.definitions import defs

    with dg.DagsterInstance.get() as instance:
        failed = defs.resolve_job_def("sync").execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": periods[0],
                "dagster/asset_partition_range_end": periods[-1],
            },
            raise_on_error=False,
        )
    assert not failed.success and crashed["n"] == 1
    accepted = deltek_vouchers(box)
    assert accepted, "the crashed batch reached Deltek"
    run_sync(periods)
    final = deltek_vouchers(box)
    assert all(len(v) == 1 for v in final.values()), "no duplicate after the re-run"
    assert set(accepted) <= set(final)
    assert set(final) == set(expected_vouchers(box, set(periods)))
    adopted = StateStore().ledger_rows(statuses=["adopted"])
    assert adopted, "the re-run adopts what the crashed run posted"


def test_cli_sync_json(env, capsys) -> None:
    from deltek_procore.cli import main

    box = env
    month = sandbox_periods(box)[-2]
    code = main(["sync", "--period", month, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    ap = out["postings"]["deltek_ap_invoices"]
    assert ap["periods"] == [month]
    posted = [r for r in ap["results"] if r["status"] == "posted"]
    assert len(posted) == ap["counts"]["posted"] == len(expected_vouchers(box, {month}))
    assert {r["document"] for r in posted} == set(deltek_vouchers(box))
    secret = box.env["DELTEK_PASSWORD"]
    assert secret not in json.dumps(out)
