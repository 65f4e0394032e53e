"""What Deltek already holds, read in bulk once per run: the look-up step of the protocol.

Deltek has no idempotency key, so before posting anything the connector reads every
unposted batch (masters and detail lines) and the posted ledger around the periods
of the run, and indexes the documents by their key (vendor + invoice for AP, RefNo
for JEs). The same holdings serve the adoption check, the period reconciliation and
the asset checks, so those read Deltek, never the connector's own ledger.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
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
        self.by_key: dict[str, dict[str, list[Held]]] = {"AP": {}, "JE": {}}
        self.by_batch: dict[str, dict[str, dict[str, Held]]] = {"AP": {}, "JE": {}}
        self.loaded: set[str] = set()

    # -- loading --
    def ensure(self, docs: Iterable[Document]) -> None:
        for transtype in {transtype_of(d) for d in docs}:
            self.load(transtype)

    def load(self, transtype: str) -> None:
        if transtype in self.loaded:
            return
        self.loaded.add(transtype)
        self.by_key[transtype] = defaultdict(list)
        self.by_batch[transtype] = {}
        for batch in self.deltek.unposted_batches(transtype):
            self._add_batch(transtype, batch)
        if self.periods:
            around = neighbours(self.periods)
            where = [
                Filter("Period", deltek_period(around[0]), ">="),
                Filter("Period", deltek_period(around[-1]), "<="),
            ]
            for held in from_ledger_rows(transtype, self.deltek.ledger_lines(transtype, where)):
                self.by_key[transtype][held.key].append(held)

    def _add_batch(self, transtype: str, batch: str) -> dict[str, Held]:
        details = self.deltek.batch_details(batch, transtype)
        masters = self.deltek.batch_masters(batch, transtype) if transtype == "AP" else ()
        docs = from_batch_details(transtype, batch, details, masters, batch_period(batch))
        self.by_batch[transtype][batch] = docs
        for key, held in docs.items():
            if not key.startswith("#"):
                self.by_key[transtype][key].append(held)
        return docs

    def refresh_batch(self, transtype: str, batch: str) -> dict[str, Held]:
        """Read one batch again (after a write): replaces what was known of it."""
        self.forget_batch(transtype, batch)
        return self._add_batch(transtype, batch)

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
