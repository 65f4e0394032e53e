"""Period reconciliation: what the ledger says Deltek holds, against what Deltek shows.

Pure: the caller reads the ledger and Deltek (`posting.lookup.DeltekHoldings`) and
records the findings. Per record, every document the connector ever placed in Deltek
for it (the original and any adjusting documents) is looked up by key and the lines
are netted per account and WBS, so an adjusted record is compared as a whole with
the record as it was last posted. Findings:

- missing: Deltek shows none of the record's documents (a deleted or rejected batch);
- changed: Deltek shows them with other amounts, accounts or projects;
- duplicate: Deltek shows two documents under one of the record's keys;
- unknown: a document in one of the connector's batches (or with one of its JE RefNo
  prefixes) that no ledger row knows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from deltek_procore.posting.lookup import OUR_BATCH_PREFIX, batch_period
from deltek_procore.posting.verify import ChargeKey, Held, compare_net, net_lines
from deltek_procore.state.states import Finding

OUR_REF_PREFIXES = ("PCW", "PCP", "PCC")


@dataclass
class Expected:
    """One record as the ledger says Deltek holds it."""

    kind: str
    record_id: int
    period: str
    transtype: str
    keys: tuple[str, ...]  # every document key the connector placed in Deltek for it
    lines: Mapping[ChargeKey, Decimal]  # the record as last posted, netted per charge
    ledger_ids: tuple[int, ...] = ()
    amount: Decimal = Decimal("0.00")


@dataclass
class Difference:
    finding: Finding
    period: str
    transtype: str
    key: str
    detail: str
    kind: str | None = None
    record_id: int | None = None
    batch: str = ""
    ledger_ids: tuple[int, ...] = ()
    planned: Decimal | None = None
    in_deltek: Decimal | None = None

    def as_row(self) -> dict[str, object]:
        return {
            "finding": str(self.finding),
            "period": self.period,
            "kind": self.kind or "",
            "record_id": self.record_id or "",
            "document": self.key.replace("|", " / "),
            "batch": self.batch,
            "planned": "" if self.planned is None else str(self.planned),
            "in_deltek": "" if self.in_deltek is None else str(self.in_deltek),
            "detail": self.detail,
        }


@dataclass
class Reconciliation:
    period: str
    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    hidden_amounts: bool = False

    def of(self, finding: Finding) -> list[Difference]:
        return [d for d in self.differences if d.finding == finding]


def is_ours(held: Held) -> bool:
    """A document the connector writes: in one of its batches, or a JE with its RefNo."""
    if held.batch.startswith(tuple(OUR_BATCH_PREFIX.values())):
        return True
    return held.transtype == "JE" and held.key.startswith(OUR_REF_PREFIXES)


def held_period(held: Held) -> int | None:
    return held.period if held.period is not None else batch_period(held.batch)


def _total(transtype: str, lines: Mapping[ChargeKey, Decimal]) -> Decimal:
    if transtype == "AP":
        return sum(lines.values(), Decimal("0.00"))
    return sum((v for v in lines.values() if v > 0), Decimal("0.00"))


def reconcile(
    period: str,
    period_code: int,
    expected: Iterable[Expected],
    held: Iterable[Held],
    known_keys: set[tuple[str, str]],
) -> Reconciliation:
    """Compare; `known_keys` = (transtype, key) of every ledger row, whatever its state
    (a document of a post still unconfirmed is not 'unknown': the next look-up adopts it)."""
    index: dict[tuple[str, str], list[Held]] = defaultdict(list)
    for h in held:
        index[(h.transtype, h.key)].append(h)
    out = Reconciliation(period=period)
    claimed: set[tuple[str, str]] = set()
    for exp in expected:
        out.checked += 1
        docs: list[Held] = []
        for key in exp.keys:
            claimed.add((exp.transtype, key))
            found = index.get((exp.transtype, key), [])
            if len(found) > 1:
                out.differences.append(
                    Difference(
                        Finding.DUPLICATE,
                        period,
                        exp.transtype,
                        key,
                        f"Deltek shows {len(found)} documents under this key: "
                        + ", ".join(f"{h.batch} ({'posted' if h.posted else 'unposted'})"
                                    for h in found),
                        exp.kind,
                        exp.record_id,
                        found[0].batch,
                        exp.ledger_ids,
                    )
                )  # fmt: skip
            docs.extend(found)
        first = exp.keys[0] if exp.keys else ""
        if not docs:
            out.differences.append(
                Difference(
                    Finding.MISSING,
                    period,
                    exp.transtype,
                    first,
                    "the ledger says it is in Deltek; Deltek shows none of its documents "
                    "(batch deleted or rejected)",
                    exp.kind,
                    exp.record_id,
                    "",
                    exp.ledger_ids,
                    exp.amount,
                    Decimal("0.00"),
                )
            )
            continue
        lines = [line for h in docs for line in h.lines]
        verdict = compare_net(exp.lines, net_lines(lines), [k for k, _ in lines])
        out.hidden_amounts = out.hidden_amounts or verdict.hidden_amounts
        if not verdict.same:
            out.differences.append(
                Difference(
                    Finding.CHANGED,
                    period,
                    exp.transtype,
                    first,
                    f"changed in Deltek: {verdict.describe()}",
                    exp.kind,
                    exp.record_id,
                    docs[0].batch,
                    exp.ledger_ids,
                    exp.amount,
                    _total(exp.transtype, net_lines(lines)),
                )
            )
    for (transtype, key), docs in sorted(index.items()):
        if (transtype, key) in claimed or (transtype, key) in known_keys:
            continue
        for h in docs:
            if is_ours(h) and held_period(h) == period_code:
                out.differences.append(
                    Difference(
                        Finding.UNKNOWN,
                        period,
                        transtype,
                        key,
                        "Deltek holds it in a connector batch but the ledger does not know it",
                        batch=h.batch,
                        in_deltek=h.total,
                    )
                )
    return out
