"""What a run reads from Deltek before posting (posting/lookup.py), against the simulator.

One run reads Deltek once: its steps share one DeltekHoldings, and a step that takes it
over compares the landing lists first, so a batch another writer added or removed in
between is seen. Counted on the simulator's side (its call log), never on the client's.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from deltek_procore.deltek.client import DeltekClient, DeltekSettings
from deltek_procore.posting.lookup import DeltekHoldings
from deltek_procore.posting.verify import ap_key
from deltek_procore.sandbox.runner import start_sandbox


@pytest.fixture
def box(tmp_path: Path):
    with start_sandbox(records=60, seed=3, workdir=tmp_path) as box:
        yield box


def client_of(box) -> DeltekClient:
    env = box.env
    return DeltekClient(
        DeltekSettings(
            api_url=env["DELTEK_API_URL"],
            username=env["DELTEK_USERNAME"],
            password=env["DELTEK_PASSWORD"],
            database=env["DELTEK_DATABASE"],
            client_id=env["DELTEK_CLIENT_ID"],
            client_secret=env["DELTEK_CLIENT_SECRET"],
        )
    )


def vendor_of(box) -> str:
    return next(f["Vendor"] for f in box.deltek.firms() if f.get("Vendor"))


def ap_batch(batch: str, period: int, vendor: str, invoice: str, amount: int) -> dict:
    """One voucher in one batch, as a clerk (or the connector) enters it."""
    master = f"M{batch}"[:32]
    return {
        "Batch": batch,
        "Description": "test",
        "Period": period,
        "Total": amount,
        "apMaster": [
            {"Batch": batch, "MasterPKey": master, "Vendor": vendor, "Invoice": invoice,
             "InvoiceDate": "2026-10-01T00:00:00.000", "TransDate": "2026-10-01T00:00:00.000",
             "LiabCode": "AP", "BankCode": "OPER", "PayTerms": "Next", "Seq": 1}
        ],
        "apDetail": [
            {"Batch": batch, "MasterPKey": master, "PKey": f"D{batch}"[:32], "Seq": 1,
             "WBS1": "", "WBS2": "", "WBS3": "", "Account": "5100", "Amount": amount}
        ],
    }  # fmt: skip


def calls_during(box, action) -> Counter:
    before = Counter(box.deltek.call_counts())
    action()
    return Counter(box.deltek.call_counts()) - before


def test_one_run_reads_deltek_once_and_sees_what_another_writer_did_in_between(box) -> None:
    vendor = vendor_of(box)
    writer, other = client_of(box), client_of(box)
    writer.create_ap_batch(ap_batch("PCAP202610AAAA", 202610, vendor, "INV-A", 100))
    holdings = DeltekHoldings.for_run(writer, ["2026-10"], "run-1")
    first = calls_during(box, lambda: holdings.load("AP"))
    assert first["GET DataEntry/apDetail/{Batch}"] == 1
    assert holdings.by_key["AP"][ap_key(vendor, "INV-A")]

    # a second step of the same run: the same holdings, checked against the landing list
    other.create_ap_batch(ap_batch("PCAP202610BBBB", 202610, vendor, "INV-B", 200))
    other.delete_batch("PCAP202610AAAA", "AP")
    again = DeltekHoldings.for_run(writer, ["2026-10"], "run-1")
    assert again is holdings
    second = calls_during(box, lambda: again.load("AP"))
    assert second["GET DataEntry/apLanding"] == 1
    assert second["GET DataEntry/apDetail/{Batch}"] == 1  # only the new batch
    assert not again.by_key["AP"].get(ap_key(vendor, "INV-A"))
    assert [h.batch for h in again.by_key["AP"][ap_key(vendor, "INV-B")]] == ["PCAP202610BBBB"]
    # loaded and checked: a third use in the same step reads nothing
    assert calls_during(box, lambda: again.load("AP")) == Counter()

    assert DeltekHoldings.for_run(writer, ["2026-10"], "run-2") is not holdings
    assert DeltekHoldings.for_run(writer, ["2026-10"], None) is not holdings
    DeltekHoldings.end_run("run-1")
    assert DeltekHoldings.for_run(writer, ["2026-10"], "run-1") is not holdings


def test_our_batches_of_far_months_are_not_read_but_hand_keyed_ones_always_are(box) -> None:
    vendor = vendor_of(box)
    client = client_of(box)
    client.create_ap_batch(ap_batch("PCAP202601FAR0", 202601, vendor, "INV-FAR", 10))
    client.create_ap_batch(ap_batch("PCAP202609NEAR", 202609, vendor, "INV-NEAR", 20))
    client.create_ap_batch(ap_batch("CLERK0001", 202601, vendor, "INV-CLERK", 30))
    holdings = DeltekHoldings(client, ["2026-10"])
    calls = calls_during(box, lambda: holdings.load("AP"))
    assert set(holdings.by_batch["AP"]) == {"PCAP202609NEAR", "CLERK0001"}
    assert calls["GET DataEntry/apDetail/{Batch}"] == 2
    assert holdings.by_key["AP"][ap_key(vendor, "INV-CLERK")]
    assert not holdings.by_key["AP"].get(ap_key(vendor, "INV-FAR"))
    # a run over that far month does read it
    far = DeltekHoldings(client, ["2026-01"])
    far.load("AP")
    assert "PCAP202601FAR0" in far.by_batch["AP"]


def test_a_read_back_with_the_masters_sent_is_one_read_of_the_details(box) -> None:
    vendor = vendor_of(box)
    client = client_of(box)
    holdings = DeltekHoldings(client, ["2026-10"])
    holdings.load("AP")
    batch = ap_batch("PCAP202610CCCC", 202610, vendor, "INV-C", 300)
    client.create_ap_batch(batch)
    sent = [{k: batch["apMaster"][0][k] for k in ("MasterPKey", "Vendor", "Invoice")}]
    shown = {}
    calls = calls_during(
        box, lambda: shown.update(holdings.refresh_batch("AP", batch["Batch"], sent))
    )
    assert calls == Counter({"GET DataEntry/apDetail/{Batch}": 1})
    (held,) = holdings.by_key["AP"][ap_key(vendor, "INV-C")]
    assert held.total == 300 and shown[f"#{held.master_key}"] is held
    # without the masters sent, Deltek's own masters name the documents (two reads)
    calls = calls_during(box, lambda: holdings.refresh_batch("AP", batch["Batch"]))
    assert calls["GET DataEntry/apMaster/{Batch}"] == 1
    assert len(holdings.by_key["AP"][ap_key(vendor, "INV-C")]) == 1
