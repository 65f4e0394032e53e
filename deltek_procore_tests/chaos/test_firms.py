"""Creating one vendor firm against the Deltek simulator with faults: an unknown outcome
is looked up (by vendor number, then by name) before the POST is sent again; the bound
holds; a refusal is not retried; the firm is never created twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deltek_procore.deltek.client import DeltekClient, DeltekSettings
from deltek_procore.http.retry import Backoff
from deltek_procore.pipeline.reference import FirmNotCreated, create_firm
from deltek_procore.sandbox import seed
from deltek_procore.sandbox.deltek_sim import DeltekSimulator
from deltek_procore.sandbox.faults import Faults
from deltek_procore.sandbox.server import serve_in_thread


@pytest.fixture
def sim() -> Iterator[DeltekSimulator]:
    simulator = DeltekSimulator(seed.build(records=200).deltek, Faults())
    server = serve_in_thread(simulator.app)
    simulator.url = server.url  # type: ignore[attr-defined]
    yield simulator
    server.stop()


def client(sim: DeltekSimulator) -> DeltekClient:
    return DeltekClient(
        DeltekSettings(
            api_url=f"{sim.url}{seed.DELTEK_API_PATH}",  # type: ignore[attr-defined]
            username=seed.DELTEK_USERNAME,
            password=seed.DELTEK_PASSWORD,
            database=seed.DELTEK_DATABASE,
            client_id=seed.DELTEK_CLIENT_ID,
            client_secret=seed.DELTEK_CLIENT_SECRET,
        ),
        sleep=lambda _s: None,
    )


def firms_named(sim: DeltekSimulator, name: str) -> list[dict]:
    return [f for f in sim.firms() if f["Name"] == name]


def create(deltek, sleeps: list[float], name: str = "Acme Hoists", number: str = "PC777"):
    return create_firm(
        deltek, number=number, name=name, fed_id=None, before=set(), sleep=sleeps.append
    )


def test_every_answer_lost_the_firm_is_found_once_not_sent_twice(sim):
    sim.faults.configure(rate_lost_response=1.0)  # commits, then a 502
    sleeps: list[float] = []
    firm, adopted = create(client(sim), sleeps)
    assert adopted and firm["Vendor"] == "PC777"
    assert len(firms_named(sim, "Acme Hoists")) == 1
    assert sim.call_counts()["POST firm"] == 1 and sleeps and sleeps[0] <= 1.0


def test_a_firm_found_by_name_under_another_number_is_adopted(sim):
    """A tenant that numbers vendors itself: the POST landed under its own number."""

    class Renumbering:
        def __init__(self, deltek: DeltekClient) -> None:
            self.deltek = deltek

        def __getattr__(self, name: str):
            return getattr(self.deltek, name)

        def create_vendor_firm(self, *, name: str, vendor: str, fed_id: str | None = None):
            from deltek_procore.deltek.errors import DeltekAmbiguousError

            self.deltek.create_vendor_firm(name=name, vendor="V-000123", fed_id=fed_id)
            raise DeltekAmbiguousError(None, "POST", "firm", "timed out")

    firm, adopted = create(Renumbering(client(sim)), [])
    assert adopted and firm["Vendor"] == "V-000123"
    assert len(firms_named(sim, "Acme Hoists")) == 1


def test_a_firm_that_cannot_be_created_fails_after_the_bound(sim):
    sim.faults.configure(failing_firms="PC777")
    sleeps: list[float] = []
    with pytest.raises(FirmNotCreated) as info:
        create(client(sim), sleeps)
    assert "4 attempts failed" in info.value.reason and "An error has occurred" in info.value.reason
    assert sim.faults.counters["deltek_firm_create_failed"] == 4
    backoff = Backoff(1.0, 8.0)
    assert len(sleeps) == 3 and all(s <= backoff.cap_s for s in sleeps)
    assert not firms_named(sim, "Acme Hoists")


def test_a_refused_firm_is_not_sent_again(sim):
    sleeps: list[float] = []
    with pytest.raises(FirmNotCreated, match="Deltek refused it: Name is required"):
        create(client(sim), sleeps, name="")
    assert sim.call_counts()["POST firm"] == 1 and sleeps == []
