"""State-store fixtures: one database (SQLite file or a private PostgreSQL schema) and two
tenants' stores on it, with overlapping ids everywhere the tests write."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deltek_procore.state.store import StateStore


@pytest.fixture(params=["sqlite", "postgres"])
def state_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def tenants(state_url) -> Iterator[tuple[StateStore, StateStore]]:
    """Stores of tenants `acme` and `globex` on the one database."""
    acme = StateStore(state_url, tenant="acme")
    globex = StateStore(state_url, tenant="globex")
    yield acme, globex
    acme.dispose()
    globex.dispose()
