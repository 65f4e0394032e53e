"""What Deltek already holds, read in bulk once per run: the look-up step of the protocol.

Deltek has no idempotency key, so before posting anything the connector reads the
unposted batches (masters and detail lines) and the posted ledger around the periods
of the run, and indexes the documents by their key (vendor + invoice for AP, RefNo
for JEs). The same holdings serve the adoption check, the period reconciliation and
the asset checks, so those read Deltek, never the connector's own ledger.

"Around the periods" is the periods and one either side, for the ledger and for the
connector's own batches alike (their names carry their period); batches keyed by hand
are always read, whatever their period. One run reads Deltek once: its steps share one
`DeltekHoldings` (`for_run`), which every write of the run keeps current, and a step
that takes it over first compares the landing lists with what it knows (one call per
transaction type), so batches another writer added or removed meanwhile are read or
dropped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from deltek_procore.deltek.filters import Filter
from deltek_procore.posting.documents import Document
from deltek_procore.posting.periods import deltek_period
from deltek_procore.posting.verify import (
    Held,
    doc_key,
    from_batch_details,
    from_ledger_rows,
    transtype_of,
)

log = logging.getLogger(__name__)

# Batches the connector writes are named <prefix><YYYYPP><hash> (payloads.batch_name).
OUR_BATCH_PREFIX = {"AP": "PCAP", "JE": "PCJE"}
RUNS_KEPT = 8  # run-scoped holdings kept in one process (one per run in progress)
_RUNS: dict[tuple[str, int], DeltekHoldings] = {}


def batch_period(batch: str) -> int | None:
    """The Deltek period encoded in one of our batch names, else None."""
    for prefix in OUR_BATCH_PREFIX.values():
        if batch.startswith(prefix) and batch[len(prefix) : len(prefix) + 6].isdigit():
            return int(batch[len(prefix) : len(prefix) + 6])
    return None


def neighbours(periods: Sequence[str]) -> list[str]:
    """The periods and one either side: where a hand-keyed twin may sit."""
    out: set[str] = set()
    for period in periods:
        year, month = (int(p) for p in period.split("-"))
        for delta in (-1, 0, 1):
            m = month + delta
            y = year + (m - 1) // 12
            m = (m - 1) % 12 + 1
            out.add(f"{y:04d}-{m:02d}")
    return sorted(out)


class DeltekHoldings:
    """Deltek's documents by key, loaded per transaction type on first need."""

    def __init__(self, deltek: Any, periods: Sequence[str]):
        self.deltek = deltek
        self.periods = sorted({p for p in periods if p})
        self.codes = {deltek_period(p) for p in neighbours(self.periods)}
        self.by_key: dict[str, dict[str, list[Held]]] = {"AP": {}, "JE": {}}
        self.by_batch: dict[str, dict[str, dict[str, Held]]] = {"AP": {}, "JE": {}}
        self.landing: dict[str, set[str]] = {"AP": set(), "JE": set()}
        self.loaded: set[str] = set()
        self._recheck: set[str] = set()

    @classmethod
    def for_run(cls, deltek: Any, periods: Sequence[str], run_id: str | None) -> DeltekHoldings:
        """The holdings of one run: its posting steps and its reconciliation read Deltek
        once. Without a run id (a plan, a test), a fresh read. Taking over a run's
        holdings marks what they loaded for a landing-list check on next use."""
        if not run_id:
            return cls(deltek, periods)
        key = (run_id, id(deltek))
        held = _RUNS.get(key)
        if (
            held is None
            or held.deltek is not deltek
            or held.periods != sorted(set(filter(None, periods)))
        ):
            held = _RUNS[key] = cls(deltek, periods)
            while len(_RUNS) > RUNS_KEPT:
                _RUNS.pop(next(iter(_RUNS)))
        else:
            held._recheck = set(held.loaded)
        return held

    @staticmethod
    def end_run(run_id: str) -> None:
        """Drop a finished run's holdings."""
        for key in [k for k in _RUNS if k[0] == run_id]:
            _RUNS.pop(key, None)

    # -- loading --
    def ensure(self, docs: Iterable[Document]) -> None:
        for transtype in {transtype_of(d) for d in docs}:
            self.load(transtype)

    def load(self, transtype: str) -> None:
        if transtype in self.loaded:
            if transtype in self._recheck:
                self._recheck.discard(transtype)
                self.recheck(transtype)
            return
        self.loaded.add(transtype)
        self.by_key[transtype] = defaultdict(list)
        self.by_batch[transtype] = {}
        names = self.deltek.unposted_batches(transtype)
        self.landing[transtype] = set(names)
        for batch in names:
            if self.may_hold(batch):
                self._add_batch(transtype, batch)
        self._load_ledger(transtype)

    def may_hold(self, batch: str) -> bool:
        """Can this unposted batch hold a document of the run's periods? Ours only when its
        period is one of them or next to one; a batch keyed by hand always can."""
        period = batch_period(batch)
        return period is None or period in self.codes

    def recheck(self, transtype: str) -> None:
        """Compare the landing list with what is known: read the batches that appeared,
        drop the ones gone, and read the posted ledger again if any went (posted)."""
        names = set(self.deltek.unposted_batches(transtype))
        known = self.landing[transtype] | set(self.by_batch[transtype])
        for batch in sorted(names - known):
            if self.may_hold(batch):
                self._add_batch(transtype, batch)
        gone = known - names
        for batch in sorted(gone):
            self.forget_batch(transtype, batch)
        self.landing[transtype] = names
        if gone:
            for key, entries in self.by_key[transtype].items():
                self.by_key[transtype][key] = [h for h in entries if not h.posted]
            self._load_ledger(transtype)

    def _load_ledger(self, transtype: str) -> None:
        if not self.periods:
            return
        around = neighbours(self.periods)
        where = [
            Filter("Period", deltek_period(around[0]), ">="),
            Filter("Period", deltek_period(around[-1]), "<="),
        ]
        for held in from_ledger_rows(transtype, self.deltek.ledger_lines(transtype, where)):
            self.by_key[transtype][held.key].append(held)

    def _add_batch(
        self, transtype: str, batch: str, sent: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Held]:
        details = self.deltek.batch_details(batch, transtype)
        if transtype != "AP":
            masters: Iterable[Mapping[str, Any]] = ()
        elif sent is not None:
            masters = sent
        else:
            masters = self.deltek.batch_masters(batch, transtype)
        docs = from_batch_details(transtype, batch, details, masters, batch_period(batch))
        self.by_batch[transtype][batch] = docs
        if docs:
            self.landing[transtype].add(batch)
        for key, held in docs.items():
            if not key.startswith("#"):
                self.by_key[transtype][key].append(held)
        return docs

    def refresh_batch(
        self, transtype: str, batch: str, sent: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Held]:
        """Read one batch again (after a write): replaces what was known of it.

        `sent`: the AP masters just written to it (MasterPKey, Vendor, Invoice). Verifying
        a write needs only the detail lines, which carry the MasterPKey: one read per
        batch; the documents are named by the vendor and invoice sent under each key."""
        self.forget_batch(transtype, batch)
        return self._add_batch(transtype, batch, sent)

    def forget_batch(self, transtype: str, batch: str) -> None:
        old = self.by_batch[transtype].pop(batch, {})
        for key, held in old.items():
            if key.startswith("#"):
                continue
            kept = [h for h in self.by_key[transtype].get(key, []) if h is not held]
            self.by_key[transtype][key] = kept

    def remember(self, held: Held) -> None:
        """A document verified in Deltek during this run (so a second plan sees it)."""
        entries = self.by_key[held.transtype].setdefault(held.key, [])
        if not any(h.batch == held.batch and h.posted == held.posted for h in entries):
            entries.append(held)

    # -- questions --
    def find(self, doc: Document) -> list[Held]:
        """Every document Deltek shows under this document's key (more than one = twins)."""
        return list(self.by_key[transtype_of(doc)].get(doc_key(doc), []))

    def documents(self, transtype: str) -> Iterable[Held]:
        for entries in self.by_key[transtype].values():
            yield from entries
