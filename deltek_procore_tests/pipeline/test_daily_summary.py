"""The daily summary over several tenants: grouped by tenant, each tenant only its own records,
and with one tenant word for word the single-company summary."""

from __future__ import annotations

import pytest

from deltek_procore import tenants
from deltek_procore.pipeline import daily_summary
from deltek_procore.pipeline.ingest import content_hash
from deltek_procore.state.store import StagedRecord, StateStore


def _waiting(store: StateStore, record_id: int, status: str, reason: str, amount: str) -> None:
    body = {"id": record_id, "project": {"id": 7}}
    store.stage([StagedRecord("direct_cost", record_id, body, content_hash(body), 7, "2026-10")])
    store.add_revision(
        kind="direct_cost", record_id=record_id, content_hash=content_hash(body),
        status=status, period="2026-10", reason=reason, amount=amount,
    )  # fmt: skip


@pytest.fixture
def shared_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    acme, beta = StateStore(url, tenant="acme"), StateStore(url, tenant="beta")
    # the same Procore ids in both tenants, other reasons and amounts
    _waiting(acme, 1, "quarantined", "cost code 03-300 has no GL account", "100.00")
    _waiting(acme, 2, "quarantined", "cost code 03-300 has no GL account", "50.00")
    _waiting(beta, 1, "failed", "Deltek answered 503", "7.00")
    return url


def _two() -> list[tenants.Tenant]:
    return [tenants.Tenant(name="acme"), tenants.Tenant(name="beta")]


def test_several_tenants_are_grouped_each_with_only_its_own_records(shared_url) -> None:
    every = daily_summary.build_every_tenant(shared_url, tenants=_two())
    acme, beta = every.by_tenant["acme"], every.by_tenant["beta"]
    assert (acme.total, acme.counts()) == (2, {"quarantined": 2})
    assert [str(g.amount) for g in acme.groups] == ["150.00"]
    assert (beta.total, beta.counts()) == (1, {"failed": 1})
    assert every.total == 3 and every.counts() == {"quarantined": 2, "failed": 1}
    assert every.subject() == "deltek-procore: 3 record(s) wait (acme 2, beta 1)"

    markdown = every.markdown()
    first, second = markdown.split("### tenant beta: 1 waiting")
    assert first.startswith("### tenant acme: 2 waiting")
    assert "03-300" in first and "503" not in first
    assert "503" in second and "03-300" not in second
    text = every.text()
    assert text.index("=== tenant acme ===") < text.index("=== tenant beta ===")


def test_one_tenant_reads_exactly_as_the_single_company_summary(shared_url) -> None:
    store = StateStore(shared_url, tenant="acme")
    one = daily_summary.build_tenants({"acme": store})
    alone = daily_summary.build(store)
    assert one.subject() == alone.subject()
    assert one.markdown() == alone.markdown()
    assert one.text() == alone.text()
    assert "tenant" not in one.text()


def test_without_a_tenants_file_the_summary_is_the_default_tenant_s(tmp_path, monkeypatch):
    monkeypatch.delenv(tenants.TENANTS_ENV, raising=False)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _waiting(StateStore(url), 3, "review", "changed after posting", "9.00")
    every = daily_summary.build_every_tenant(url)
    assert list(every.by_tenant) == ["default"]
    assert every.text() == daily_summary.build(StateStore(url)).text()


def test_nothing_waiting_anywhere_says_so(tmp_path) -> None:
    every = daily_summary.build_every_tenant(f"sqlite:///{tmp_path / 's.db'}", tenants=_two())
    assert every.total == 0
    assert every.subject() == "deltek-procore: nothing waits for a person"
