"""DeltekClient against the Deltek simulator over real HTTP (serve_in_thread)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from deltek_procore.deltek import (
    DeltekAmbiguousError,
    DeltekAuthError,
    DeltekClient,
    DeltekError,
    DeltekSettings,
    Filter,
)
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.deltek_sim import DeltekSimulator
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.server import serve_in_thread

NASTY_INVOICE = 'INV-9 "A&B" #3 50% + Müller/請求 ?x=1'


class Clock:
    """Shared by simulator and client so token expiry can be stepped, not waited for."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def seed_data() -> dict:
    return seed.build(records=200).deltek


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(seed_data, clock):
    simulator = DeltekSimulator(seed_data, Faults(), clock=clock)
    server = serve_in_thread(simulator.app)
    simulator.url = server.url  # type: ignore[attr-defined]
    yield simulator
    server.stop()


def make_client(sim, clock, **changes) -> DeltekClient:
    values = dict(
        api_url=f"{sim.url}{seed.DELTEK_API_PATH}",
        username=seed.DELTEK_USERNAME,
        password=seed.DELTEK_PASSWORD,
        database=seed.DELTEK_DATABASE,
        client_id=seed.DELTEK_CLIENT_ID,
        client_secret=seed.DELTEK_CLIENT_SECRET,
        read_timeout=10,
    )
    values.update(changes)
    return DeltekClient(DeltekSettings(**values), sleep=lambda _s: None, clock=clock)


@pytest.fixture
def client(sim, clock) -> DeltekClient:
    return make_client(sim, clock)


def ap_control(batch: str, vendor: str, invoice: str, period: int, amounts: list[str]) -> dict:
    master = uuid.uuid4().hex
    details = [
        {
            "Batch": batch,
            "MasterPKey": master,
            "PKey": uuid.uuid4().hex,
            "Seq": seq,
            "Description": f"line {seq}",
            "WBS1": "2024002.00",
            "WBS2": " ",
            "WBS3": " ",
            "Account": "5100",
            "Amount": Decimal(amount),
        }
        for seq, amount in enumerate(amounts, start=1)
    ]
    return {
        "Batch": batch,
        "Description": "deltek-procore test",
        "Period": period,
        "Total": sum(Decimal(a) for a in amounts),
        "Posted": "N",
        "apMaster": [
            {
                "Batch": batch,
                "MasterPKey": master,
                "Vendor": vendor,
                "Invoice": invoice,
                "InvoiceDate": "2026-11-03T00:00:00.000",
                "TransDate": "2026-11-03T00:00:00.000",
                "LiabCode": "AP",
                "BankCode": "OPER",
                "PayTerms": "Next",
                "Seq": 1,
            }
        ],
        "apDetail": details,
    }


def je_control(batch: str, ref_no: str, period: int, amount: str) -> dict:
    line = {"Batch": batch, "RefNo": ref_no, "WBS2": " ", "WBS3": " "}
    return {
        "Batch": batch,
        "Description": "commitment",
        "Period": period,
        "Total": Decimal(amount),
        "CreditsTotal": Decimal(amount),
        "jeMaster": [{"Batch": batch, "RefNo": ref_no, "Description": "PO 12", "Type": "3",
                      "TransDate": "2026-11-05T00:00:00.000"}],
        "jeDetail": [
            {**line, "PKey": f"{batch}-1", "Seq": 1, "WBS1": "2024002.00", "Account": "5200",
             "DebitAmount": Decimal(amount), "CreditAmount": 0},
            {**line, "PKey": f"{batch}-2", "Seq": 2, "WBS1": "", "Account": "2150",
             "DebitAmount": 0, "CreditAmount": Decimal(amount)},
        ],
    }  # fmt: skip


def test_vendor_firm_ap_batch_lookup_post_and_ledger(sim, client):
    period = client.active_period()
    assert period == 202611

    firm = client.create_vendor_firm(name='Ünïcode & Sons "Test"', vendor="ZZ-NEW/1", fed_id="99-1")
    assert len(firm["ClientID"]) == 32 and firm["VendorInd"] == "Y"
    assert [f["ClientID"] for f in client.find_vendor(vendor="ZZ-NEW/1")] == [firm["ClientID"]]
    assert client.find_vendor(name='Ünïcode & Sons "Test"')[0]["Vendor"] == "ZZ-NEW/1"

    batch = "DPTEST" + uuid.uuid4().hex[:20]
    created = client.create_ap_batch(
        ap_control(batch, "ZZ-NEW/1", NASTY_INVOICE, period, ["100.10", "23.45"])
    )
    assert created[0]["Batch"] == batch

    control = client.get_ap_batch(batch)
    assert control is not None and control["Posted"] == "N"
    assert [m["Invoice"] for m in control["apMaster"]] == [NASTY_INVOICE]
    amounts = sorted(Decimal(str(d["Amount"])) for d in control["apDetail"])
    assert amounts == [Decimal("23.45"), Decimal("100.10")]

    unposted = client.find_ap_vouchers("ZZ-NEW/1", NASTY_INVOICE)
    assert [(v["Batch"], v["Posted"], v["Invoice"]) for v in unposted] == [
        (batch, "N", NASTY_INVOICE)
    ]
    assert client.find_ap_vouchers("ZZ-NEW/1", NASTY_INVOICE + "x") == []
    assert any(m["Batch"] == batch for m in client.unposted_ap_masters())

    result = client.post_batch(batch, "AP", period, company="01")
    assert result["files"][0]["batch"] == batch and result["files"][0]["ret"] == "1"
    assert client.get_ap_batch(batch) is None  # posted files leave DataEntry

    posted = client.find_ap_vouchers("ZZ-NEW/1", NASTY_INVOICE)
    assert len(posted) == 1
    voucher = posted[0]
    assert (voucher["Posted"], voucher["Batch"], voucher["Period"]) == ("Y", batch, period)
    assert voucher["Amount"] == Decimal("123.55") and voucher["Lines"] == 2
    assert voucher["PostSeq"] == result["files"][0]["postseq"]
    assert [v["Invoice"] for v in client.posted_ap(period) if v["Batch"] == batch] == [
        NASTY_INVOICE
    ]
    in_sim = [v for v in sim.ap_vouchers() if v["Batch"] == batch]
    assert in_sim[0]["Posted"] == "Y" and in_sim[0]["Invoice"] == NASTY_INVOICE


def test_journal_entry_round_trip(client):
    period = client.active_period()
    batch = "JE" + uuid.uuid4().hex[:24]
    ref = "PC-WO-786001 & #1"
    client.create_je_batch(je_control(batch, ref, period, "5000.00"))
    assert client.get_je_batch(batch)["jeMaster"][0]["RefNo"] == ref
    assert [(j["Batch"], j["Posted"]) for j in client.find_je(ref)] == [(batch, "N")]
    client.post_batch(batch, "JE", period)
    found = client.find_je(ref)
    assert [(j["Batch"], j["Posted"], j["Amount"]) for j in found] == [
        (batch, "Y", Decimal("5000.00"))
    ]


def test_business_rule_400_is_a_readable_deltek_error(client):
    period = client.active_period()
    batch = "BAD" + uuid.uuid4().hex[:20]
    with pytest.raises(DeltekError) as info:
        client.create_ap_batch(ap_control(batch, "NO-SUCH-VENDOR", "I-1", period, ["1"]))
    err = info.value
    assert type(err) is DeltekError and err.status == 400
    assert "NO-SUCH-VENDOR" in err.message
    assert str(err).startswith("Deltek rejected POST DataEntry/apControl (400): ")
    assert f"[record {batch}] — " in str(err)


def test_token_expiry_mid_sequence_is_transparent(sim, client, caplog):
    caplog.set_level("INFO", logger="deltek_procore.deltek.client")
    sim.faults.configure(token_expire_after_calls=3)
    vendor = seed_vendor(client)
    period = client.active_period()
    batch = "EXP" + uuid.uuid4().hex[:20]
    client.create_ap_batch(ap_control(batch, vendor, "EXP-1", period, ["10"]))
    for _ in range(3):
        assert client.get_ap_batch(batch) is not None
    assert len(client.find_ap_vouchers(vendor, "EXP-1")) == 1
    client.post_batch(batch, "AP", period)
    assert client.find_ap_vouchers(vendor, "EXP-1")[0]["Posted"] == "Y"
    assert client.stats.tokens >= 4
    assert client.stats.retries >= 3  # each expiry cost one repeated call, nothing more
    assert "refresh grant failed" not in caplog.text  # renewed by refresh, not password
    assert sim.call_counts()["POST token"] == client.stats.tokens
    assert sim.faults.settings.token_expire_after_calls == 3


def test_proactive_refresh_before_expiry(sim, client, clock):
    client.projects()
    clock.now += 1799 - 30  # inside the refresh margin: renewed without a 401
    client.projects()
    assert client.stats.tokens == 2
    assert client.stats.retries == 0
    clock.now += 1799 + 5  # both tokens expired: refresh token still works
    client.projects()
    assert client.stats.tokens == 3


def test_expired_access_token_is_renewed_after_401(sim, client):
    client.projects()
    sim.expire_tokens()
    assert client.projects()
    assert client.stats.tokens == 2 and client.stats.retries == 1


def test_reference_reads(sim, client, seed_data):
    client.page_size = 7  # several pages
    assert len(client.firms()) == len(sim.firms())
    projects = client.projects()
    assert {(p["WBS1"], p["WBS2"].strip()) for p in projects} >= {
        ("2024001.00", ""),
        ("2024001.00", "CONST"),
    }
    accounts = client.accounts()  # GLSummary: only accounts with activity, once each
    assert {a["Account"] for a in accounts} == {a["Account"] for a in seed_data["gl_history"]}


def test_accounts_path_missing_gives_none(sim, clock):
    client = make_client(sim, clock, accounts_path="NoSuchChart")
    assert client.accounts() is None


def test_long_filter_set_uses_post_as_get(sim, client):
    vendors = [f["Vendor"] for f in sim.firms() if f["Vendor"]][:3]
    filters = [Filter("Vendor", v, condition="OR") for v in vendors]
    filters += [Filter("Vendor", "X" * 60 + str(i), condition="OR") for i in range(30)]
    rows = client.firms(filters)
    assert sorted(r["Vendor"] for r in rows) == sorted(vendors)
    assert sim.call_counts().get("POST firm", 0) >= 1  # the simulator saw the POST form


def test_lost_write_response_is_ambiguous_and_the_write_is_findable(sim, client):
    vendor = seed_vendor(client)
    period = client.active_period()
    batch = "LOST" + uuid.uuid4().hex[:20]
    sim.faults.configure(rate_lost_response=1.0)
    with pytest.raises(DeltekAmbiguousError) as info:
        client.create_ap_batch(ap_control(batch, vendor, "LOST-1", period, ["7"]))
    sim.faults.configure(rate_lost_response=0.0)
    assert info.value.status == 502 and "Bad Gateway" in info.value.message
    assert sim.call_counts()["POST DataEntry/apControl"] == 1  # not retried
    assert [v["Batch"] for v in client.find_ap_vouchers(vendor, "LOST-1")] == [batch]


def test_reads_survive_5xx_and_429(sim, client):
    client.projects()
    sim.faults.configure(rate_5xx=0.3, rate_429=0.2, seed=3)
    try:
        for _ in range(10):
            assert client.projects()
    finally:
        sim.faults.reset()
    assert client.stats.retries > 0


def test_sign_in_failures_are_plain(sim, clock):
    bad = make_client(sim, clock, password="wrong-password")
    with pytest.raises(DeltekAuthError) as info:
        bad.token_info()
    assert info.value.message == (
        "Deltek rejected the username or password for DELTEK_USERNAME=apiuser"
    )
    assert "wrong-password" not in str(info.value) + repr(info.value) + repr(bad)

    with pytest.raises(DeltekAuthError) as info:
        make_client(sim, clock, database="Vantagepoint").token_info()
    assert "DELTEK_DATABASE" in str(info.value)

    with pytest.raises(DeltekAuthError) as info:
        make_client(sim, clock, client_secret="nope").token_info()
    assert "DELTEK_CLIENT_SECRET" in str(info.value)

    sim.set_password_grant(False)
    with pytest.raises(DeltekAuthError) as info:
        make_client(sim, clock).token_info()
    assert "Allow Password Grant Type" in str(info.value)
    sim.set_password_grant(True)

    with pytest.raises(DeltekAuthError) as info:
        make_client(sim, clock, api_url=sim.url + "/SANDBOX").token_info()
    assert "does not look like a Vantagepoint API root" in str(info.value)


def test_unreachable_host(clock):
    client = DeltekClient(
        DeltekSettings(
            api_url="http://127.0.0.1:9/X/api",
            username="u",
            password="p-secret",
            database="d",
            client_id="c",
            client_secret="s-secret",
            connect_timeout=1,
        ),
        sleep=lambda _s: None,
        clock=clock,
    )
    with pytest.raises(DeltekAuthError) as info:
        client.token_info()
    assert info.value.message == "cannot reach 127.0.0.1:9"


def seed_vendor(client: DeltekClient) -> str:
    vendor = "T" + uuid.uuid4().hex[:9].upper()
    client.create_vendor_firm(name=f"Test vendor {vendor}", vendor=vendor)
    return vendor
