"""Applying a plan: look up, write, verify, record. Nothing is recorded as posted until
Deltek shows it.

1. Every planned document is looked up in Deltek's holdings first (`posting.lookup`):
   found with the planned lines and amounts -> adopted; found with other lines (a
   hand-keyed voucher for another amount, two documents under one key) -> review,
   showing both sides; nothing is posted.
2. The rest is posted in batches. The ledger says `posting` (with the batch name)
   before the write, so a crash leaves a trace the next run's look-up resolves.
3. After every write, successful or not, the batch is read back from Deltek. A 2xx
   whose batch Deltek does not show (an empty or garbled answer that saved nothing)
   is an ambiguous outcome like a lost response: the look-up said absent, so it is
   posted again, within `retries_per_run`; what Deltek then shows is verified line by
   line. A batch Deltek rejects (4xx) is split until the bad documents are isolated
   and quarantined with Deltek's message.
4. Only documents Deltek shows with the planned lines become `posted`/`adjusted`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from deltek_procore.deltek.errors import DeltekAmbiguousError, DeltekError
from deltek_procore.posting import payloads
from deltek_procore.posting.documents import Voucher, document_to_json
from deltek_procore.posting.lookup import DeltekHoldings
from deltek_procore.posting.periods import deltek_period, period_end
from deltek_procore.posting.plan import Outcome, PlanRow, PostingSettings
from deltek_procore.posting.verify import Held, compare, lookup_verdict, transtype_of
from deltek_procore.state.states import Action, Reason, State
from deltek_procore.state.store import AuditEvent, StateStore

log = logging.getLogger(__name__)

POSTABLE = (Action.CREATE, Action.ADJUST, Action.REVERSE)
STATUS_AFTER = {Action.CREATE: State.POSTED, Action.ADJUST: State.ADJUSTED,
                Action.REVERSE: State.ADJUSTED}  # fmt: skip


class Poster:
    """Applies a plan against Deltek, recording every step."""

    def __init__(
        self,
        store: StateStore,
        deltek: Any,
        settings: PostingSettings,
        *,
        run_id: str | None = None,
        mapping_hash: str | None = None,
        progress: Callable[[str], None] | None = None,
    ):
        self.store = store
        self.deltek = deltek
        self.settings = settings
        self.run_id = run_id
        self.mapping_hash = mapping_hash
        self.progress = progress or (lambda _msg: None)

    # -- entry point --
    def apply(self, rows: list[PlanRow], holdings: DeltekHoldings | None = None) -> Outcome:
        """Post a plan. Pass one `holdings` for several plans of a run: Deltek is read once."""
        outcome = Outcome()
        self._record_non_posting(rows, outcome)
        postable = [r for r in rows if r.action in (*POSTABLE, Action.ADOPT) and r.document]
        if not postable:
            return outcome
        if holdings is None:
            holdings = DeltekHoldings(self.deltek, [r.period for r in postable if r.period])
        holdings.ensure(r.document for r in postable)
        waited = {
            (r.kind, r.record_id)
            for r in postable
            if r.ledger is not None and r.ledger.status == State.REVIEW
        }
        # Write 'posting' before talking to Deltek, so a crash leaves a trace to look up.
        self._set_states(postable, State.POSTING)
        self.store.audit([self._mapped_event(r) for r in postable], self.run_id)
        to_post: list[PlanRow] = []
        for row in postable:
            verdict = lookup_verdict(row.document, holdings.find(row.document))
            found = list(verdict.found)
            if verdict.action == "post":
                if row.action == Action.ADOPT:  # approved for adoption, but gone since
                    row.action = Action.CREATE
                to_post.append(row)
            elif row.action == Action.ADOPT and verdict.comparison is not None:
                # a person approved adopting the one document Deltek holds
                hidden = verdict.comparison.hidden_amounts
                self._adopt(row, found[0], outcome, hidden, row.reason)
            elif verdict.action == "adopt":
                assert verdict.comparison is not None
                self._adopt(row, found[0], outcome, verdict.comparison.hidden_amounts)
            else:
                self._review(row, outcome, verdict.reason, found)
        groups: dict[tuple[str, str], list[PlanRow]] = defaultdict(list)
        for row in to_post:
            groups[(transtype_of(row.document), row.period or "")].append(row)
        for (transtype, period), group in sorted(groups.items()):
            for start in range(0, len(group), self.settings.batch_size):
                chunk = group[start : start + self.settings.batch_size]
                self._post_chunk(transtype, period, chunk, holdings, outcome)
                self.progress(
                    f"{transtype} {period}: {min(start + len(chunk), len(group))}/{len(group)}"
                )
        settled = (State.POSTED, State.ADOPTED, State.ADJUSTED)
        for item in outcome.results:
            if (item["kind"], item["record_id"]) in waited and item["status"] in settled:
                self.store.close_reviews(
                    item["kind"], item["record_id"], f"{item['status']} by run {self.run_id}"
                )
        return outcome

    def _mapped_event(self, r: PlanRow) -> AuditEvent:
        return AuditEvent(
            "mapped",
            r.kind,
            r.record_id,
            {
                "action": str(r.action),
                "amount": str(r.amount),
                "accounts": sorted({ln.charge.account for ln in r.document.lines}),
                "document": r.doc_number,
                "vendor": r.vendor,
                "mapping_hash": (self.mapping_hash or "")[:12],
            },
        )

    # -- ledger bookkeeping --
    def _record_non_posting(self, rows: list[PlanRow], outcome: Outcome) -> None:
        audit: list[AuditEvent] = []
        by_state: dict[str, list[PlanRow]] = defaultdict(list)
        for row in rows:
            if row.action == Action.SKIP:
                outcome.add(row, "skipped")
            elif row.action == Action.IGNORE:
                by_state[State.IGNORED].append(row)
                outcome.add(row, State.IGNORED)
            elif row.action == Action.DISABLE:
                by_state[State.DISABLED].append(row)
                outcome.add(row, State.DISABLED)
            elif row.action == Action.QUARANTINE:
                by_state[State.QUARANTINED].append(row)
                outcome.add(row, State.QUARANTINED)
                audit.append(
                    AuditEvent("quarantined", row.kind, row.record_id, {"reason": row.reason})
                )
            elif row.action == Action.REVIEW:
                by_state[State.REVIEW].append(row)
                self._queue_review(row, row.reason)
                outcome.add(row, State.REVIEW)
                audit.append(
                    AuditEvent("review_queued", row.kind, row.record_id, {"reason": row.reason})
                )
        for status, group in by_state.items():
            self._set_states(group, status)
        self.store.audit(audit, self.run_id)
        held = [row for row in rows if row.action == Action.FAIL]
        if held:  # something they need failed this run (their vendor's firm): retried next run
            self._set_states(held, State.FAILED)
            by_reason: dict[str, list[PlanRow]] = defaultdict(list)
            for row in held:
                by_reason[row.reason].append(row)
            for reason, group in by_reason.items():
                self._fail(group, outcome, reason)

    def _queue_review(self, row: PlanRow, reason: str, code: Reason = Reason.LATE_CHANGE) -> None:
        posted = row.posted or row.ledger
        self.store.add_review(
            kind=row.kind,
            record_id=row.record_id,
            posted_hash=posted.content_hash if posted else "",
            new_hash=row.content_hash,
            posted_amount=posted.amount if posted else None,
            new_amount=str(row.amount) if row.amount is not None else None,
            reason=reason,
            code=str(code),
        )

    def _values(self, row: PlanRow, status: str) -> dict[str, Any]:
        document = row.full_document or row.document
        return {
            "status": str(status),
            "reason": row.reason,
            "period": row.period,
            "action": str(row.action),
            "mapping_hash": self.mapping_hash,
            "run_id": self.run_id,
            # a quarantined record has no document: keep Procore's amount for `status`
            "amount": str(row.amount)
            if row.amount is not None
            else (row.facts.get("amount") or None),
            "document_json": document_to_json(document) if document else None,
            "deltek_vendor": row.vendor,
            "document": row.doc_number,
        }

    def _set_states(self, rows: Sequence[PlanRow], status: str) -> None:
        """Update each row's current revision in place, or add its next revision (in bulk).

        A revision the reconciliation marked missing or changed stays as history."""
        updates: list[tuple[int, dict[str, Any]]] = []
        inserts: list[PlanRow] = []
        for row in rows:
            latest = row.ledger
            if (
                latest is not None
                and latest.content_hash == row.content_hash
                and not latest.done
                and latest.status not in (State.MISSING, State.CHANGED)
            ):
                values = self._values(row, status)
                updates.append((latest.id, values))
                for key, value in values.items():
                    setattr(latest, key, value)
            else:
                inserts.append(row)
        self.store.update_ledger_rows(updates)
        created = self.store.add_revisions(
            [
                {
                    "kind": r.kind,
                    "record_id": r.record_id,
                    "content_hash": r.content_hash,
                    **self._values(r, status),
                }
                for r in inserts
            ]
        )
        for row, new in zip(inserts, created, strict=True):
            row.ledger = new
            row.revision = new.revision

    def _adopt(
        self, row: PlanRow, hit: Held, outcome: Outcome, hidden: bool, why: str = ""
    ) -> None:
        key = hit.master_key or hit.key
        why = why or "already in Deltek with the same lines (found by look-up); not posted again"
        self.store.update_ledger_rows(
            [
                (
                    row.ledger.id,
                    {
                        "status": str(State.ADOPTED),
                        "deltek_batch": hit.batch[:32] or None,
                        "deltek_key": key[:64] or None,
                        "reason": why,
                    },
                )
            ]
        )
        self.store.audit(
            [
                AuditEvent(
                    "dedup_hit",
                    row.kind,
                    row.record_id,
                    {"batch": hit.batch, "key": key, "posted": hit.posted, "verified": True},
                )
            ],
            self.run_id,
        )
        row.batch = hit.batch
        outcome.hidden_amounts = outcome.hidden_amounts or hidden
        outcome.add(row, State.ADOPTED, "already in Deltek with the same lines; adopted")

    def _review(self, row: PlanRow, outcome: Outcome, reason: str, found: list[Held]) -> None:
        self.store.update_ledger_rows(
            [(row.ledger.id, {"status": str(State.REVIEW), "reason": reason})]
        )
        self._queue_review(row, reason, Reason.DELTEK_DIFFERS)
        self.store.audit(
            [
                AuditEvent(
                    "deltek_differs",
                    row.kind,
                    row.record_id,
                    {
                        "reason": reason,
                        "planned": [
                            [ln.charge.account, ln.charge.wbs1, str(a)]
                            for ln, a in _signed(row.document)
                        ],
                        "deltek": [
                            {"batch": h.batch, "posted": h.posted,
                             "lines": [[k[0], k[1], str(a)] for k, a in h.lines]}
                            for h in found
                        ],
                    },
                )
            ],
            self.run_id,
        )  # fmt: skip
        outcome.add(row, State.REVIEW, reason)

    # -- posting --
    def _post_chunk(
        self,
        transtype: str,
        period: str,
        chunk: list[PlanRow],
        holdings: DeltekHoldings,
        outcome: Outcome,
        tries_left: int | None = None,
    ) -> None:
        tries_left = self.settings.retries_per_run if tries_left is None else tries_left
        keyed = [(row, payloads.master_key(row.document, row.revision)) for row in chunk]
        period_code = deltek_period(period)
        batch = payloads.batch_name(
            "PCAP" if transtype == "AP" else "PCJE", period_code, [k for _, k in keyed]
        )
        control, create = self._control(transtype, period, period_code, batch, keyed)
        sent = _sent_masters(transtype, keyed)
        for row, key in keyed:
            row.batch, row.master_key = batch, key
        self.store.update_ledger_rows(
            [(row.ledger.id, {"deltek_batch": batch, "deltek_key": key}) for row, key in keyed]
        )
        self.store.audit(
            [AuditEvent("post", r.kind, r.record_id, {"batch": batch}) for r in chunk], self.run_id
        )
        while True:
            try:
                create(control)
            except DeltekAmbiguousError as exc:
                self._audit(chunk, "ambiguous", batch=batch, error=str(exc))
                shown = self._read_back(holdings, transtype, batch, sent)
                if shown is None:  # even the look-up failed: decide nothing now
                    self._fail(
                        chunk, outcome, f"Deltek did not confirm batch {batch}: {exc.message}"
                    )
                    return
                if shown:
                    self._settle(transtype, period, keyed, shown, holdings, outcome, tries_left)
                    return
                if tries_left <= 0:
                    self._fail(
                        chunk, outcome, f"Deltek did not confirm batch {batch}: {exc.message}"
                    )
                    return
                tries_left -= 1
                self._audit(chunk, "retry", batch=batch, why="look-up found nothing")
                continue
            except DeltekError as exc:
                if (
                    exc.status is not None
                    and 400 <= exc.status < 500
                    and exc.status
                    not in (
                        401,
                        403,
                        429,
                    )
                ):
                    # The batch name is derived from its documents, so "already exists"
                    # means an earlier send of this very batch landed late: look before
                    # splitting, which would post the halves a second time.
                    shown = self._read_back(holdings, transtype, batch, sent)
                    if shown:
                        self._settle(transtype, period, keyed, shown, holdings, outcome, 0)
                        return
                    self._split(transtype, period, chunk, holdings, outcome, exc)
                else:
                    self._fail(chunk, outcome, str(exc))
                return
            shown = self._read_back(holdings, transtype, batch, sent)
            if shown is None:
                self._fail(
                    chunk,
                    outcome,
                    f"Deltek accepted batch {batch} but could not be read back to verify it; "
                    "the next sync looks it up before posting anything",
                )
                return
            if not shown:
                self._audit(
                    chunk,
                    "unconfirmed",
                    batch=batch,
                    why="Deltek answered 2xx but does not show the batch",
                )
                if tries_left <= 0:
                    self._fail(
                        chunk,
                        outcome,
                        f"Deltek answered batch {batch} with success but does not show it",
                    )
                    return
                tries_left -= 1
                self._audit(chunk, "retry", batch=batch, why="not in Deltek after a 2xx")
                continue
            self._settle(transtype, period, keyed, shown, holdings, outcome, tries_left)
            return

    def _control(
        self, transtype: str, period: str, period_code: int, batch: str, keyed: list
    ) -> tuple[dict, Callable[[dict], Any]]:
        items = [(r.document, k) for r, k in keyed]
        if transtype == "AP":
            control = payloads.ap_control(
                batch,
                items,
                period_code=period_code,
                liability_code=self.settings.liability_code,
                bank_code=self.settings.bank_code,
                pay_terms=self.settings.pay_terms,
                company=self.settings.company,
                end_date=period_end(period),
            )
            return control, self.deltek.create_ap_batch
        control = payloads.je_control(
            batch,
            items,
            period_code=period_code,
            company=self.settings.company,
            end_date=period_end(period),
        )
        return control, self.deltek.create_je_batch

    def _read_back(
        self, holdings: DeltekHoldings, transtype: str, batch: str, sent: list | None = None
    ) -> dict[str, Held] | None:
        """The batch as Deltek shows it now ({} = absent); None when the read failed."""
        try:
            return holdings.refresh_batch(transtype, batch, sent)
        except DeltekError as exc:
            log.warning("read-back of batch %s failed: %s", batch, exc)
            return None

    def _settle(
        self,
        transtype: str,
        period: str,
        keyed: list[tuple[PlanRow, str]],
        shown: dict[str, Held],
        holdings: DeltekHoldings,
        outcome: Outcome,
        tries_left: int,
    ) -> None:
        """Per document of a batch Deltek shows: verified -> posted; absent -> post again;
        other lines -> review (Deltek holds something we did not send)."""
        verified: list[tuple[PlanRow, Held]] = []
        absent: list[PlanRow] = []
        for row, key in keyed:
            held = shown.get(f"#{key}") if transtype == "AP" else shown.get(row.document.ref_no)
            if held is None:
                absent.append(row)
                continue
            verdict = compare(row.document, [held])
            if verdict.same:
                outcome.hidden_amounts = outcome.hidden_amounts or verdict.hidden_amounts
                verified.append((row, held))
            else:
                outcome.readback_mismatches.append(
                    f"{row.kind} {row.record_id}: {verdict.describe()}"
                )
                self._review(
                    row,
                    outcome,
                    f"Deltek shows batch {held.batch} with other lines than were sent: "
                    f"{verdict.describe()}",
                    [held],
                )
        if verified:
            self._record_posted(transtype, period, verified, holdings, outcome)
        if absent:
            self._audit(
                absent, "unconfirmed", batch=keyed[0][0].batch, why="not in the batch read back"
            )
            if tries_left > 0:
                self._post_chunk(transtype, period, absent, holdings, outcome, tries_left - 1)
            else:
                self._fail(absent, outcome, "Deltek does not show it after posting")

    def _split(
        self,
        transtype: str,
        period: str,
        chunk: list[PlanRow],
        holdings: DeltekHoldings,
        outcome: Outcome,
        exc: DeltekError,
    ) -> None:
        if len(chunk) == 1:
            row = chunk[0]
            reason = f"Deltek rejected it: {exc.message}"
            row.code = Reason.DELTEK_REJECTED
            self.store.update_ledger(
                [row.ledger.id], status=str(State.QUARANTINED), reason=reason, deltek_batch=None
            )
            self._audit(chunk, "rejected", status=exc.status, message=exc.message)
            outcome.add(row, State.QUARANTINED, reason)
            return
        middle = len(chunk) // 2
        for half in (chunk[:middle], chunk[middle:]):
            self._post_chunk(transtype, period, half, holdings, outcome)

    def _fail(self, chunk: list[PlanRow], outcome: Outcome, reason: str) -> None:
        self.store.bump_attempts([r.ledger.id for r in chunk], str(State.FAILED), reason)
        for row in chunk:
            attempts = (row.ledger.attempts or 0) + 1
            status = State.ABORTED if attempts >= self.settings.max_attempts else State.FAILED
            if status == State.ABORTED:
                self.store.update_ledger([row.ledger.id], status=str(State.ABORTED))
            outcome.add(row, status, reason)
        self._audit(chunk, "error", reason=reason)

    def _audit(self, rows: Sequence[PlanRow], event: str, **detail: Any) -> None:
        self.store.audit(
            [AuditEvent(event, r.kind, r.record_id, dict(detail)) for r in rows], self.run_id
        )

    def _record_posted(
        self,
        transtype: str,
        period: str,
        verified: list[tuple[PlanRow, Held]],
        holdings: DeltekHoldings,
        outcome: Outcome,
    ) -> None:
        updates: list[tuple[int, dict[str, Any]]] = []
        audit: list[AuditEvent] = []
        batches: set[str] = set()
        for row, held in verified:
            status = STATUS_AFTER[Action(row.action)]
            ref = row.master_key if transtype == "AP" else row.document.ref_no
            updates.append(
                (
                    row.ledger.id,
                    {
                        "status": str(status),
                        "deltek_batch": held.batch,
                        "deltek_key": ref,
                        "reason": f"{status} in batch {held.batch}; Deltek shows it with the "
                        "planned lines (verified)",
                    },
                )
            )
            audit.append(
                AuditEvent(
                    str(status),
                    row.kind,
                    row.record_id,
                    {"batch": held.batch, "key": ref, "verified": "read back from Deltek"},
                )
            )
            outcome.add(row, status)
            batches.add(held.batch)
        self.store.update_ledger_rows(updates)
        self.store.audit(audit, self.run_id)
        for batch in sorted(batches):
            outcome.batches.append(batch)
            if self.settings.post_batches:
                self._post_to_ledger(transtype, period, batch, holdings)

    def _post_to_ledger(
        self, transtype: str, period: str, batch: str, holdings: DeltekHoldings
    ) -> None:
        try:
            self.deltek.post_batch(batch, transtype, deltek_period(period), self.settings.company)
            self.store.audit(
                [AuditEvent("ledger_posted", None, None, {"batch": batch})], self.run_id
            )
        except DeltekError as exc:
            self.store.audit(
                [AuditEvent("ledger_post_failed", None, None, {"batch": batch, "error": str(exc)})],
                self.run_id,
            )
            return
        # Posted files leave the Transaction Center; keep knowing them as posted.
        shown = dict(holdings.by_batch[transtype].get(batch, {}))
        holdings.forget_batch(transtype, batch)
        for key, held in shown.items():
            if not key.startswith("#"):
                holdings.remember(replace(held, posted=True))


def _sent_masters(transtype: str, keyed: list[tuple[PlanRow, str]]) -> list[dict] | None:
    """The AP masters a batch is written with: its read-back then needs only the details."""
    if transtype != "AP":
        return None
    return [
        {"MasterPKey": key, "Vendor": row.document.vendor, "Invoice": row.document.invoice}
        for row, key in keyed
    ]


def _signed(doc: Any) -> list[tuple[Any, Any]]:
    if isinstance(doc, Voucher):
        return [(ln, ln.amount) for ln in doc.lines]
    return [(ln, ln.debit - ln.credit) for ln in doc.lines]
