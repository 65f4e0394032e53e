"""Procore records with missing, absurd or hostile fields, in an otherwise normal sync.

Each damaged record must be quarantined with a reason a person can act on, or posted
with its text cleaned; every other record must post exactly as it would have without
them. The records are damaged in the simulator's data before the first read, so the
connector sees them exactly as Procore would serve them.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from deltek_procore.mapping.config import load_mapping
from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox
from deltek_procore.state.store import StateStore
from deltek_procore_tests.chaos.harness import (
    RoundResult,
    actual_deltek,
    compare_deltek,
    expected_deltek,
    make_clients,
    sync_round,
    tenant_of,
)

RECORDS = 600
HUGE = "1000000000000000.00"  # 1e15


def _only_line(amount: str) -> Callable[[dict], None]:
    def change(cost: dict) -> None:
        del cost["line_items"][1:]
        cost["line_items"][0]["amount"] = amount
        cost["grand_total"] = amount

    return change


def _set(**values: Any) -> Callable[[dict], None]:
    def change(cost: dict) -> None:
        cost.update(values)

    return change


def _line(**values: Any) -> Callable[[dict], None]:
    def change(cost: dict) -> None:
        cost["line_items"][0].update(values)

    return change


def _credit_line(cost: dict) -> None:
    """First line becomes a credit; the total follows, so the record stays consistent."""
    lines = cost["line_items"]
    if len(lines) < 2:
        lines.append({**lines[0], "id": lines[0]["id"] + 10**8, "amount": "1000.00"})
    lines[0]["amount"] = "-" + lines[0]["amount"].lstrip("-")
    total = sum(Decimal(line["amount"]) for line in lines)
    if total <= 0:
        lines[1]["amount"] = str(Decimal(lines[1]["amount"]) - total + Decimal("1.00"))
        total = sum(Decimal(line["amount"]) for line in lines)
    cost["grand_total"] = f"{total:.2f}"


LONG_TEXT = ("Description with a long tail " * 400)[:10_000]
CONTROL_INVOICE = "INV\x00\x07-77\r\n\t\x1b"
CONTROL_TEXT = "Line\tone\nTwo\x1b[31m red\x7f end"
UNICODE_INVOICE = "Größe-№7-日本✓"
UNICODE_TEXT = "Façade – 漢字 ✓ 𝔘 \u202egnp.exe"

# name -> (change to a direct cost, expected outcome)
# outcome: ("quarantined", words in the reason) or ("posted", None)
DAMAGE: dict[str, tuple[Callable[[dict], None], tuple[str, str | None]]] = {
    "no_vendor": (
        _set(vendor_id=None, vendor=None, vendor_name=None),
        ("quarantined", "has no vendor in Procore"),
    ),
    "amount_1e15": (_only_line(HUGE), ("quarantined", "is beyond 999999999.99")),
    "negative_line": (_credit_line, ("posted", None)),
    "negative_total": (_only_line("-500.00"), ("posted", None)),
    "no_grand_total": (_set(grand_total=None), ("quarantined", "but the grand total is 0.00")),
    "invoice_10000_chars": (
        _set(invoice_number="9" * 10_000),
        ("quarantined", "invoice number is 10000 characters; Deltek takes at most 50"),
    ),
    "description_10000_chars": (
        _line(description=LONG_TEXT),
        ("posted", None),
    ),
    "control_characters": (
        lambda c: (_set(invoice_number=CONTROL_INVOICE)(c), _line(description=CONTROL_TEXT)(c)),
        ("posted", None),
    ),
    "non_ascii_everywhere": (
        lambda c: (
            _set(invoice_number=UNICODE_INVOICE, description=UNICODE_TEXT)(c),
            _line(description=UNICODE_TEXT)(c),
        ),
        ("posted", None),
    ),
    "blank_invoice_number": (_set(invoice_number=" \t "), ("posted", None)),
    "line_without_cost_code": (
        _line(cost_code_id=None, cost_code=None),
        ("quarantined", "has no cost code"),
    ),
    "unknown_cost_type": (_line(line_item_type_id=424242), ("quarantined", "has no cost type")),
}


def _negative_requisition(req: dict) -> None:
    """Every G703 line bills -100.00 this period, and the G702 summary agrees."""
    for item in req["items"]:
        before = Decimal(item["total_completed_and_stored_to_date_from_previous"])
        stored = item["materials_presently_stored_from_previous_progress"]
        item["work_completed_this_period"] = "-100.00"
        item["materials_presently_stored"] = stored
        item["materials_moved"] = "0.00"
        item["total_completed_and_stored_to_date"] = str(before - 100)
        item["work_completed_retainage_retained_this_period"] = "0.00"
        item["materials_stored_retainage_new_materials"] = "0.00"
    req["summary"]["current_payment_due"] = str(-100 * len(req["items"]))


@dataclass
class Scenario:
    box: Any
    original: Any  # the seed data before any damage
    targets: dict[str, int] = field(default_factory=dict)  # damage name -> direct cost id
    negative_requisition: int = 0
    result: RoundResult | None = None

    def outcome(self, record_id: int) -> dict[str, Any]:
        assert self.result is not None
        rows = [
            row
            for report in self.result.reports
            if report.outcome is not None
            for row in report.outcome.results
            if row["record_id"] == record_id
        ]
        assert len(rows) == 1, rows
        return rows[0]

    def vouchers_of(self, record_id: int) -> list[dict]:
        row = self.outcome(record_id)
        return [
            v
            for v in self.box.deltek.ap_vouchers()
            if (str(v["Vendor"]), str(v["Invoice"])) == (row["vendor"], row["document"])
        ]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    folder: Path = tmp_path_factory.mktemp("records")
    box = start_sandbox(records=RECORDS, workdir=folder, hourly_limit=10**7, spike_limit=10**7)
    try:
        original = copy.deepcopy(box.data)
        mapping = load_mapping(box.mappings_path)
        want_ap, _ = expected_deltek(box.data, mapping, [])
        clean = [  # direct costs that would post cleanly, of vendors Deltek already knows
            int(e.source.split()[1])
            for e in want_ap.values()
            if e.source.startswith("direct_cost") and not e.key[0].startswith("<")
        ]
        assert len(clean) >= len(DAMAGE)
        costs = {c["id"]: c for c in box.data.procore["direct_costs"]}
        found = Scenario(box, original)
        for (name, (change, _)), cost_id in zip(DAMAGE.items(), clean, strict=False):
            change(costs[cost_id])
            found.targets[name] = cost_id
        requisition = next(
            e for e in want_ap.values() if e.source.startswith("requisition")
        ).source.split()[1]
        found.negative_requisition = int(requisition)
        reqs = {r["id"]: r for r in box.data.procore["requisitions"]}
        _negative_requisition(reqs[int(requisition)])
        procore, deltek = make_clients(box.env)
        found.result = sync_round(
            store=StateStore(f"sqlite:///{folder / 'state.db'}"),
            procore=procore,
            deltek=deltek,
            mapping=mapping,
            periods=sandbox_periods(box),
            tenant=tenant_of(box.env),
        )
        yield found
    finally:
        box.stop()


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def test_the_sync_runs_to_the_end(scenario: Scenario) -> None:
    assert scenario.result is not None and scenario.result.clean, scenario.result.errors


@pytest.mark.parametrize("name", [n for n, (_, (s, _)) in DAMAGE.items() if s == "quarantined"])
def test_damaged_record_is_quarantined_with_its_reason(scenario: Scenario, name: str) -> None:
    words = DAMAGE[name][1][1]
    row = scenario.outcome(scenario.targets[name])
    assert row["status"] == "quarantined", row
    assert words in row["reason"], row["reason"]
    assert not scenario.vouchers_of(scenario.targets[name])


def test_requisition_netting_negative_is_quarantined(scenario: Scenario) -> None:
    row = scenario.outcome(scenario.negative_requisition)
    assert row["status"] == "quarantined", row
    assert "nets to -" in row["reason"] and "nothing to pay" in row["reason"], row["reason"]


def _one_voucher(scenario: Scenario, name: str) -> dict:
    row = scenario.outcome(scenario.targets[name])
    assert row["status"] == "posted", row
    found = scenario.vouchers_of(scenario.targets[name])
    assert len(found) == 1, found
    return found[0]


def test_credit_line_posts_with_its_sign(scenario: Scenario) -> None:
    voucher = _one_voucher(scenario, "negative_line")
    amounts = [Decimal(str(d["Amount"])) for d in voucher["apDetail"]]
    assert any(a < 0 for a in amounts) and sum(amounts) > 0


def test_negative_direct_cost_posts_as_a_credit_voucher(scenario: Scenario) -> None:
    """Observed policy: a negative invoice-type direct cost is a vendor credit, posted as is
    (unlike a subcontractor invoice, which is refused when it nets to zero or less)."""
    voucher = _one_voucher(scenario, "negative_total")
    assert [Decimal(str(d["Amount"])) for d in voucher["apDetail"]] == [Decimal("-500.00")]


def test_long_description_is_cut_to_the_column(scenario: Scenario) -> None:
    voucher = _one_voucher(scenario, "description_10000_chars")
    texts = [d["Description"] for d in voucher["apDetail"]]
    assert LONG_TEXT[:40].strip() in texts, texts
    assert all(len(t) <= 40 for t in texts)


def test_control_characters_are_replaced_not_posted(scenario: Scenario) -> None:
    voucher = _one_voucher(scenario, "control_characters")
    assert voucher["Invoice"] == "INV -77"
    line = voucher["apDetail"][0]["Description"]
    assert line == "Line one Two [31m red end"
    assert not _has_control(voucher["Invoice"] + line)


def test_non_ascii_text_survives_unchanged(scenario: Scenario) -> None:
    voucher = _one_voucher(scenario, "non_ascii_everywhere")
    assert voucher["Invoice"] == UNICODE_INVOICE
    line = voucher["apDetail"][0]["Description"]
    assert line == "Façade – 漢字 ✓ 𝔘 gnp.exe"  # the right-to-left override is a control
    assert not _has_control(line)


def test_blank_invoice_number_falls_back_to_the_procore_id(scenario: Scenario) -> None:
    voucher = _one_voucher(scenario, "blank_invoice_number")
    assert voucher["Invoice"] == f"PC-DC{scenario.targets['blank_invoice_number']}"


def test_every_other_record_posts_exactly_as_without_the_damage(scenario: Scenario) -> None:
    box = scenario.box
    mapping = load_mapping(box.mappings_path)
    want_ap, want_je = expected_deltek(scenario.original, mapping, box.deltek.firms())
    damaged = {f"direct_cost {i}" for i in scenario.targets.values()}
    damaged.add(f"requisition {scenario.negative_requisition}")
    want_ap = {k: v for k, v in want_ap.items() if v.source not in damaged}
    got_ap, got_je = actual_deltek(box.deltek)
    posted_damaged = {
        (row["vendor"], row["document"])
        for i in scenario.targets.values()
        if (row := scenario.outcome(i))["status"] == "posted"
    }
    got_ap = {k: v for k, v in got_ap.items() if k not in posted_damaged}
    # the damaged records' original keys must not be in Deltek either
    problems = compare_deltek(want_ap, got_ap, "voucher") + compare_deltek(
        want_je, got_je, "journal entry"
    )
    assert not problems, "\n".join(problems[:20])
    assert len(want_ap) > 100


@pytest.mark.parametrize("amount", ["NaN", "not a number", "Infinity"])
def test_unparseable_amount_quarantines_one_record_not_the_sync(
    tmp_path: Path, amount: str
) -> None:
    box = start_sandbox(records=300, workdir=tmp_path, hourly_limit=10**7, spike_limit=10**7)
    try:
        mapping = load_mapping(box.mappings_path)
        want_ap, _ = expected_deltek(box.data, mapping, [])
        target = next(
            int(e.source.split()[1])
            for e in want_ap.values()
            if e.source.startswith("direct_cost") and not e.key[0].startswith("<")
        )
        cost = next(c for c in box.data.procore["direct_costs"] if c["id"] == target)
        cost["grand_total"] = amount
        procore, deltek = make_clients(box.env)
        result = sync_round(
            store=StateStore(f"sqlite:///{tmp_path / 'state.db'}"),
            procore=procore,
            deltek=deltek,
            mapping=mapping,
            periods=sandbox_periods(box),
            tenant=tenant_of(box.env),
        )
        assert result.clean, result.errors
        assert len(box.deltek.ap_vouchers()) >= len(want_ap) - 1
    finally:
        box.stop()


def test_vendor_name_with_control_characters_creates_a_clean_firm(tmp_path: Path) -> None:
    box = start_sandbox(records=300, workdir=tmp_path, hourly_limit=10**7, spike_limit=10**7)
    try:
        used = {c["vendor_id"] for c in box.data.procore["direct_costs"] if c.get("vendor_id")}
        seeded = {f["Vendor"] for f in box.data.deltek["firms"]}
        vendor = next(
            v
            for v in box.data.procore["vendors"]
            if v["id"] in used
            and v["name"]
            and v["origin_code"] not in seeded
            and not v.get("business_id")
        )
        hostile = "Evil\x00 Vendor\r\n\x1b[2J " + "Ω" * 10_000
        vendor.update(name=hostile, company=hostile)
        procore, deltek = make_clients(box.env)
        result = sync_round(
            store=StateStore(f"sqlite:///{tmp_path / 'state.db'}"),
            procore=procore,
            deltek=deltek,
            mapping=load_mapping(box.mappings_path),
            periods=sandbox_periods(box),
            tenant=tenant_of(box.env),
        )
        assert result.clean, result.errors
        firm = next(f for f in box.deltek.firms() if str(f["Name"]).startswith("Evil"))
        assert len(firm["Name"]) <= 255
        assert not _has_control(firm["Name"]), repr(firm["Name"][:40])
    finally:
        box.stop()
