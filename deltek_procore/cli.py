"""The `deltek-procore` command.

Every sub-command has --help, exits non-zero with a one-line reason on failure,
and never prints a secret. `sync` and `backfill` run the same Dagster job the UI
runs, in-process, on the instance under DAGSTER_HOME.

Every sub-command acts on one tenant (deltek_procore.tenants): `--tenant NAME`, by default the
only one configured (without a tenants file: today's single company, `default`). With several
and no `--tenant`, a command says which there are; `status` then shows every tenant.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deltek_procore.state.store import StateStore
    from deltek_procore.tenants import Tenant

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


class CliError(Exception):
    """A failure with a one-line reason for the operator."""


# ---- helpers ---------------------------------------------------------------------------------
def ensure_dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to ./.dagster_home with the repo's dagster.yaml (SQLite)."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        if REPO_DAGSTER_YAML.exists():
            shutil.copyfile(REPO_DAGSTER_YAML, target)
        else:
            target.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _tenant(args: argparse.Namespace | None = None) -> Tenant:
    """The tenant a command acts on: `--tenant`, else the only one (else an error naming them)."""
    from deltek_procore.tenants import select_tenant

    return select_tenant(getattr(args, "tenant", None))


def _store(tenant: Tenant) -> StateStore:
    """The state store scoped to ``tenant`` (the URL is the deployment's)."""
    from deltek_procore.state.store import StateStore

    return StateStore(tenant=tenant.name)


def _mapping(tenant: Tenant) -> Any:
    """The tenant's mapping file: its DELTEK_PROCORE_MAPPINGS (or file entry), else the default."""
    from deltek_procore.connections import tenant_environment
    from deltek_procore.mapping.config import load_mapping

    return load_mapping(env=tenant_environment(tenant))


def _for_tenant(tenant: Tenant, text: str) -> str:
    """``text`` naming a tenant of the tenants file; today's text for the implicit one."""
    return text if tenant.implicit else f"{text} (tenant {tenant.name})"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    limit: int = 50,
    wrap: str | None = None,
    width: int = 70,
) -> str:
    """Rows as aligned columns; the `wrap` column (last) is wrapped, never cut."""
    if not rows:
        return "  (none)"
    shown = rows[:limit]
    fixed = [c for c in columns if c != wrap]
    widths = {c: min(60, max(len(c), *(len(str(r.get(c, ""))) for r in shown))) for c in fixed}
    order = fixed + ([wrap] if wrap else [])
    head = "  ".join(c.ljust(widths[c]) if c in widths else c for c in order)
    lines = ["  " + head.rstrip()]
    indent = "  " + " " * sum(widths[c] + 2 for c in fixed)
    for r in shown:
        cells = "  ".join(str(r.get(c, ""))[: widths[c]].ljust(widths[c]) for c in fixed)
        if wrap:
            text = textwrap.wrap(str(r.get(wrap, "") or ""), width) or [""]
            lines.append(("  " + cells + "  " + text[0]).rstrip())
            lines.extend(indent + more for more in text[1:])
        else:
            lines.append(("  " + cells).rstrip())
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more (see `deltek-procore status --json`)")
    return "\n".join(lines)


# ---- running the Dagster job in-process ----------------------------------------------------------
POSTING_ASSETS = ("deltek_ap_invoices", "deltek_commitment_journal_entries")


def run_sync_job(
    periods: list[str],
    *,
    plan_only: bool = False,
    approved_plans: Sequence[str] = (),
    tenant: Tenant | None = None,
    rows: bool = False,
) -> tuple[bool, str, dict[str, Any]]:
    """Run the tenant's `sync` job (default: the only tenant) for one month or a range;
    returns (success, run id, reports). `rows`: also every record's result row (`--json`
    prints them); without it a report holds its counts and the rows that need a person."""
    import dagster as dg

    from deltek_procore.definitions import defs
    from deltek_procore.pipeline.postings import report_key, report_rows_key

    tenant = tenant or _tenant()
    ensure_dagster_home()
    job = defs.resolve_job_def(tenant.dagster_name("sync"))
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    if plan_only or approved_plans:
        posting = {"plan_only": plan_only, "approved_plans": list(approved_plans)}
        run_config["ops"] = {_op_name(job, name): {"config": posting} for name in POSTING_ASSETS}
    kwargs: dict[str, Any] = {"run_config": run_config, "raise_on_error": False}
    tags: dict[str, str] = {}
    if approved_plans:
        from deltek_procore.defs.assets import APPROVED_TAG

        tags[APPROVED_TAG] = ",".join(approved_plans)
    if len(periods) == 1:
        kwargs["partition_key"] = periods[0]
    else:
        tags["dagster/asset_partition_range_start"] = periods[0]
        tags["dagster/asset_partition_range_end"] = periods[-1]
    if tags:
        kwargs["tags"] = tags
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, **kwargs)
        failures = [
            {
                "step": ev.step_key,
                "error": ev.event_specific_data.error.cls_name,
                "message": ev.event_specific_data.error.message.strip(),
            }
            for ev in result.all_events
            if ev.event_type_value == "STEP_FAILURE"
        ]
    store = _store(tenant)
    reports = {}
    for name in POSTING_ASSETS:
        report = store.get_reference(report_key(name, result.run_id))
        if report:
            if rows:
                report["results"] = [
                    row
                    for period in report["periods"]
                    for row in store.get_reference(report_rows_key(name, result.run_id, period))
                    or []
                ]
            reports[name] = report
    if failures:
        reports["failures"] = failures
    created = [
        e["detail"].get("vendor")
        for e in store.audit_trail(kind="vendor")
        if e["event"] == "firm_created" and e["run_id"] == result.run_id
    ]
    if created:
        reports["firms_created"] = created
    return result.success, result.run_id, reports


def _op_name(job: Any, asset_name: str) -> str:
    """The op that computes ``asset_name`` in ``job``: the name itself, or with the tenant's
    key prefix (``acme__deltek_ap_invoices``)."""
    names = [n.name for n in job.nodes]
    if asset_name in names:
        return asset_name
    prefixed = [n for n in names if n.endswith("__" + asset_name)]
    if len(prefixed) != 1:
        raise CliError(f"job {job.name} has no single step for {asset_name}")
    return prefixed[0]


CONFIG_ERRORS = ("ConfigurationError", "MappingFileError", "MasterKeyError", "CredentialsError")


def outcome_line(reports: dict[str, Any], failures: list[dict[str, Any]]) -> tuple[int, str]:
    """The exit code and the summary's first line: 0 = every postable record done
    (quarantines and warnings listed), 1 = something failed (how many, which step),
    2 = bad configuration."""
    failed = {
        name: rep["counts"].get("failed", 0) + rep["counts"].get("aborted", 0)
        for name, rep in reports.items()
    }
    quarantined = sum(rep["counts"].get("quarantined", 0) for rep in reports.values())
    warnings = [
        f"{name}.{check}"
        for name, rep in reports.items()
        for check, value in rep.get("checks", {}).items()
        if not value["passed"] and value.get("severity") == "WARN"
    ]
    errors = [
        f"{name}.{check}"
        for name, rep in reports.items()
        for check, value in rep.get("checks", {}).items()
        if not value["passed"] and value.get("severity") != "WARN"
    ]
    if any(f["error"] in CONFIG_ERRORS for f in failures):
        first = next(f for f in failures if f["error"] in CONFIG_ERRORS)
        return EXIT_USAGE, f"CONFIGURATION: {first['step']}: {first['message']}"
    waiting = [rep["awaiting_approval"] for rep in reports.values() if rep.get("awaiting_approval")]
    if waiting and not failures:
        return EXIT_OK, f"WAITING FOR APPROVAL: {', '.join(waiting)} (nothing posted)"
    if failures or any(failed.values()) or errors or not reports:
        parts = [f"{n} record(s) failed in {name}" for name, n in failed.items() if n]
        parts += [f"step {f['step']} failed ({f['error']})" for f in failures]
        parts += [f"check {c} failed" for c in errors]
        return EXIT_FAILED, "FAILED: " + ("; ".join(parts) or "no posting step ran")
    return EXIT_OK, (
        f"OK: every postable record is done; {quarantined} quarantined, "
        f"{len(warnings)} warning(s)" + (f" ({', '.join(warnings)})" if warnings else "")
    )


def _summarise(reports: dict[str, Any], run_id: str, *, as_json: bool, plan_only: bool) -> int:
    failures = reports.pop("failures", [])
    firms_created = reports.pop("firms_created", [])
    code, first = outcome_line(reports, failures) if not plan_only else (EXIT_OK, "PLAN")
    if as_json:
        _print_json(
            {"outcome": first, "exit_code": code, "run_id": run_id, "postings": reports,
             "failures": failures, "firms_created": firms_created}
        )  # fmt: skip
    else:
        print(first)
        print(f"run {run_id}")
        if firms_created:
            print(f"firms created in Deltek ({len(firms_created)}): {', '.join(firms_created)}")
        for name, rep in reports.items():
            counts = rep["counts"]
            print(f"\n{name}  ({rep['periods'][0]} .. {rep['periods'][-1]})")
            print("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "  nothing")
            if counts.get("skipped") or counts.get("skip"):
                print(
                    "  (skipped: already in Deltek and unchanged since, not approved in Procore, "
                    "or nothing billed this period; `replay KIND ID --explain` says which)"
                )
            if rep.get("awaiting_approval"):
                if rep.get("stale_approval"):
                    print(
                        f"  approved plan {', '.join(rep['stale_approval'])} no longer matches "
                        "Procore and Deltek: nothing posted"
                    )
                print(
                    f"  WAITING FOR APPROVAL: {rep['awaiting_approval']} (nothing posted); "
                    f"`deltek-procore approve {rep['awaiting_approval']}` posts exactly this plan"
                )
            elif not plan_only:
                print(
                    f"  posted total {rep['posted_total']}   adopted total {rep['adopted_total']}"
                )
                for check, value in rep.get("checks", {}).items():
                    mark = (
                        "ok  "
                        if value["passed"]
                        else ("WARN" if value.get("severity") == "WARN" else "FAIL")
                    )
                    print(f"  check {mark} {check}: {value['detail']}")
            rows = rep.get("results", rep.get("shown_rows", []))
            if plan_only:
                changes = [r for r in rows if r.get("action") not in ("skip",)]
                print(
                    _table(
                        changes,
                        (
                            "kind",
                            "record_id",
                            "period",
                            "action",
                            "vendor",
                            "document",
                            "account",
                            "amount",
                            "reason",
                        ),
                        100,
                    )
                )
            quarantined = rep.get("quarantined", [])
            if quarantined:
                print(f"  quarantined ({len(quarantined)}), by reason (fix, then sync again):")
                reasons: dict[str, int] = {}
                for row in quarantined:
                    reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
                for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:15]:
                    print(f"    {n:>5} x {reason}")
                print(
                    "    (every record: `deltek-procore status`; one record: `replay KIND ID --explain`)"
                )
            failed = [r for r in rows if r.get("status") in ("failed", "aborted")]
            if failed:  # say which and why, e.g. the vendor whose firm could not be created
                print(f"  failed ({len(failed)}), by reason (the next sync tries them again):")
                why: dict[str, int] = {}
                for row in failed:
                    why[row["reason"]] = why.get(row["reason"], 0) + 1
                for reason, n in sorted(why.items(), key=lambda kv: -kv[1])[:15]:
                    print(f"    {n:>5} x {reason}")
        for failure in failures:
            print(f"FAILED {failure['step']}: {failure['message']}", file=sys.stderr)
    return code


# ---- commands ---------------------------------------------------------------------------------
def cmd_sync(args: argparse.Namespace) -> int:
    from deltek_procore.posting.periods import parse_period

    period = parse_period(args.period)
    tenant = _tenant(args)
    if args.plan:
        return _plan_only([period], args.json, tenant)
    ok, run_id, reports = run_sync_job([period], tenant=tenant, rows=args.json)
    return _summarise(reports, run_id, as_json=args.json, plan_only=False)


def _plan_only(periods: list[str], as_json: bool, tenant: Tenant) -> int:
    """Every step of the sync up to the plan (pipeline.steps), nothing written to Deltek."""
    from deltek_procore import connections
    from deltek_procore.pipeline import steps

    store, mapping = _store(tenant), _mapping(tenant)
    procore = connections.procore_client(tenant=tenant)
    deltek = connections.deltek_client(tenant=tenant)
    planned = steps.plan_sync(
        procore, deltek, store, mapping, periods, tenant=connections.tenant_key(tenant=tenant)
    )
    out: dict[str, Any] = {
        name: {**report.summary(), "results": [r.table_row() for r in report.plan]}
        for name, report in planned.reports.items()
    }
    firms = [{"vendor": f["Vendor"], "name": f["Name"]} for f in planned.firms]
    if as_json:
        _print_json(
            {"outcome": "PLAN", "firms_to_create": firms, "postings": out, "periods": periods}
        )
        return EXIT_OK
    print(f"firms to create in Deltek ({len(firms)}):")
    print(_table(firms, ("vendor", "name"), 200))
    return _summarise(out, "plan (nothing written)", as_json=False, plan_only=True)


def refresh_procore(procore: Any, store: Any) -> None:
    from deltek_procore.pipeline import steps

    steps.ingest_all(procore, store)


def cmd_backfill(args: argparse.Namespace) -> int:
    from deltek_procore.posting.periods import periods_between

    periods = periods_between(args.from_period, args.to_period)
    tenant = _tenant(args)
    if args.plan:
        return _plan_only(periods, args.json, tenant)
    print(
        _for_tenant(
            tenant, f"backfilling {len(periods)} month(s) {periods[0]} .. {periods[-1]} in one run"
        ),
        file=sys.stderr,
    )
    stop = _progress_ticker(tenant)
    try:
        ok, run_id, reports = run_sync_job(periods, tenant=tenant, rows=args.json)
    finally:
        stop()
    return _summarise(reports, run_id, as_json=args.json, plan_only=False)


def _progress_ticker(tenant: Tenant) -> Callable[[], None]:
    """Print how far posting has got, from the ledger, every few seconds (stderr)."""
    if not sys.stderr.isatty():
        return lambda: None
    done = threading.Event()

    def tick() -> None:
        store = _store(tenant)
        while not done.wait(3):
            counts = store.status_counts()
            total = {
                s: sum(k.get(s, 0) for k in counts.values())
                for s in ("posted", "adopted", "quarantined")
            }
            print(f"\r  posted {total['posted']}  adopted {total['adopted']}  quarantined {total['quarantined']}",
                  end="", file=sys.stderr, flush=True)  # fmt: skip

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()

    def stop() -> None:
        done.set()
        thread.join(1)
        print("", file=sys.stderr)

    return stop


def cmd_status(args: argparse.Namespace) -> int:
    """One tenant's records as today; without --tenant and with several, one section each."""
    from deltek_procore.state.store import RECORD_STATES
    from deltek_procore.tenants import load_tenants

    unknown = sorted(set(args.state or []) - set(RECORD_STATES))
    if unknown:
        print(
            f"error: unknown state(s) {', '.join(unknown)}; valid: {', '.join(RECORD_STATES)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    statuses = args.state or ["quarantined", "failed", "aborted", "review", "missing", "changed"]
    tenants = [_tenant(args)] if args.tenant else load_tenants()
    if len(tenants) == 1:
        data = _status_data(_store(tenants[0]), args, statuses)
        if args.json:
            _print_json(data)
        else:
            _print_status(data, statuses)
        return EXIT_OK
    every = {t.name: _status_data(_store(t), args, statuses) for t in tenants}
    if args.json:
        _print_json({"tenants": every})
        return EXIT_OK
    for number, (name, data) in enumerate(every.items()):
        print(("\n" if number else "") + f"=== tenant {name} ===")
        _print_status(data, statuses)
    return EXIT_OK


def _status_data(store: StateStore, args: argparse.Namespace, statuses: list[str]) -> dict:
    """What `status --json` prints for one tenant."""
    periods = [args.period] if args.period else None
    counts = store.status_counts(periods)
    rows = [
        {
            "kind": r.kind, "record_id": r.record_id, "revision": r.revision, "period": r.period,
            "status": r.status, "document": r.document or "", "amount": r.amount or "",
            "batch": r.deltek_batch or "", "reason": r.reason or "",
        }
        for r in store.ledger_rows(kinds=args.kind, periods=periods, statuses=statuses)
    ]  # fmt: skip
    latest = {}
    for row in rows:
        latest[(row["kind"], row["record_id"])] = row
    rows = [r for r in latest.values() if _is_latest(store, r)]
    findings = [
        {k: v for k, v in f.items() if k not in ("previous_states",)}
        for f in store.findings(periods)
    ]
    return {
        "counts": counts,
        "records": rows,
        "review_queue": store.reviews(),
        "deltek_findings": findings,
    }


def _print_status(data: dict[str, Any], statuses: list[str]) -> None:
    counts, rows = data["counts"], data["records"]
    reviews, findings = data["review_queue"], data["deltek_findings"]
    print("records by state (newest revision of each):")
    for kind, by_status in sorted(counts.items()):
        print(f"  {kind:<15} " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    print(f"\n{', '.join(statuses)}:")
    print(
        _table(
            rows,
            ("kind", "record_id", "period", "status", "document", "amount", "reason"),
            wrap="reason",
        )
    )
    print(f"\nreview queue ({len(reviews)} open):")
    print(_table(reviews, ("kind", "record_id", "posted_amount", "new_amount", "reason")))
    print(
        f"\nDeltek differs from the ledger ({len(findings)} open; `replay KIND ID` re-posts a missing one):"
    )
    print(
        _table(
            findings,
            ("period", "finding", "kind", "record_id", "doc_key", "planned", "in_deltek", "detail"),
        )
    )


def _is_latest(store: Any, row: dict[str, Any]) -> bool:
    latest = store.latest(row["kind"], [row["record_id"]]).get(row["record_id"])
    return latest is not None and latest.revision == row["revision"]


KINDS = ("requisition", "direct_cost", "work_order", "purchase_order", "change_order")


def cmd_replay(args: argparse.Namespace) -> int:
    from deltek_procore.replay import explain, replay
    from deltek_procore.review import operator, record_action

    tenant = _tenant(args)
    store = _store(tenant)
    if args.explain:
        print(explain(args.kind, args.id, store, tenant=tenant))
        return EXIT_OK
    by = operator(args.by)
    record_action(store, "replay_requested", args.kind, args.id, by, args.reason)
    outcome = replay(args.kind, args.id, store, tenant=tenant)
    print(outcome)
    return EXIT_OK if not outcome.startswith(("failed", "aborted")) else EXIT_FAILED


def cmd_review(args: argparse.Namespace) -> int:
    from deltek_procore import review
    from deltek_procore.replay import replay

    tenant = _tenant(args)
    store = _store(tenant)
    if args.action == "list":
        items = review.open_items(store)
        if args.json:
            _print_json(items)
        else:
            print(f"review queue ({len(items)} open):")
            print(
                _table(
                    items,
                    ("id", "kind", "record_id", "code", "posted_amount", "new_amount", "reason"),
                    200,
                )
            )
        return EXIT_OK
    if args.id is None:
        print(f"review {args.action} needs the item's ID (see `review list`)", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.action == "show":
            shown = review.show(store, args.id)
            if args.json:
                _print_json(shown)
            else:
                item = shown["item"]
                print(
                    f"review {item['id']}: {item['kind']} {item['record_id']} ({item['status']})\n"
                    f"  why: {item['reason']}\n"
                    f"  posted amount {item['posted_amount'] or '-'}, "
                    f"new amount {item['new_amount'] or '-'}"
                )
                print("ledger:")
                print(_table(shown["ledger"], ("revision", "status", "amount", "document",
                                               "batch", "reason"), 200))  # fmt: skip
            return EXIT_OK
        by = review.operator(args.by)
        if args.action == "dismiss":
            item = review.dismiss(store, args.id, by, args.reason or "")
            print(f"dismissed review {args.id} ({item['kind']} {item['record_id']}) by {by}")
            return EXIT_OK
        item = review.approve(store, args.id, by, args.reason or "approved")
    except review.ReviewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    outcome = replay(item["kind"], int(item["record_id"]), store, tenant=tenant)
    print(f"approved review {args.id} by {by}; {outcome}")
    return EXIT_OK if not outcome.startswith(("failed", "aborted")) else EXIT_FAILED


def cmd_approve(args: argparse.Namespace) -> int:
    """Post plans a sync stored under `require_approval: true`, if they still match."""
    from deltek_procore.review import operator, record_action

    tenant = _tenant(args)
    store = _store(tenant)
    periods: set[str] = set()
    for pid in args.plan_ids:
        stored = store.get_reference(f"plan:{pid}")
        if stored is None:
            raise CliError(
                _for_tenant(tenant, f"no stored plan {pid}")
                + "; a sync under require_approval prints its id"
            )
        periods |= set(stored["periods"])
        print(
            f"approving {pid}: {stored['documents']} document(s), total {stored['total']}, "
            f"{', '.join(stored['kinds'])}"
        )
    by = operator(args.by)
    for pid in args.plan_ids:
        record_action(store, "plan_approved", None, None, by, args.reason, plan=pid)
    ok, run_id, reports = run_sync_job(
        sorted(periods), approved_plans=args.plan_ids, tenant=tenant, rows=args.json
    )
    return _summarise(reports, run_id, as_json=args.json, plan_only=False)


def cmd_ignore(args: argparse.Namespace) -> int:
    from deltek_procore.review import operator, record_action

    store = _store(_tenant(args))
    by = operator(args.by)
    if args.undo:
        removed = store.unignore(args.kind, args.id)
        if removed:
            record_action(store, "unignored", args.kind, args.id, by, args.reason)
        print("removed from the ignore list" if removed else "was not ignored")
    else:
        store.ignore(args.kind, args.id, args.reason)
        record_action(store, "ignored", args.kind, args.id, by, args.reason)
        print(f"{args.kind} {args.id} will be ignored: {args.reason}")
    return EXIT_OK


def cmd_mappings(args: argparse.Namespace) -> int:
    from deltek_procore.mapping_report import check_report, render_check, suggest

    tenant = _tenant(args)
    if args.action == "check":
        report = check_report(tenant=tenant)
        if args.json:
            _print_json(report)
        else:
            print(render_check(report))
        return EXIT_OK if report["ok"] else EXIT_FAILED
    path = suggest(args.out, tenant=tenant)
    print(
        f"wrote proposed matches to {path}; review them and copy what is right into the mapping file"
    )
    return EXIT_OK


def cmd_ping(args: argparse.Namespace) -> int:
    from deltek_procore.ping import render, run_ping

    tenant = _tenant(args)
    report = run_ping(timeout=args.timeout, tenant=tenant)
    if args.json:
        _print_json(report.as_dict())
    else:
        if not tenant.implicit:
            print(f"tenant {tenant.name}")
        print(render(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_credentials(args: argparse.Namespace) -> int:
    """Store the tenant's credential set, encrypted (values from a prompt or stdin)."""
    from deltek_procore.credentials import NAMES, CredentialStore, MasterKeyError
    from deltek_procore.state.store import default_state_url

    tenant = _tenant(args)
    secret_words = ("SECRET", "PASSWORD")
    names = NAMES[args.system]
    values: dict[str, str] = {}
    if sys.stdin.isatty():
        for name in names:
            prompt = f"{name}: "
            value = (
                getpass.getpass(prompt) if any(w in name for w in secret_words) else input(prompt)
            )
            if value.strip():
                values[name] = value.strip()
    else:
        for line in sys.stdin:
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.strip().partition("=")
                key = key.strip().removesuffix(tenant.suffix())  # also NAME__<TENANT>=
                if key in names and value.strip():
                    values[key] = value.strip()
    if not values:
        raise CliError(f"no values given; expected some of {', '.join(names)}")
    store = CredentialStore(default_state_url(), tenant=tenant.name)
    try:
        kept = store.get(args.system) or {}
    except MasterKeyError:
        kept = {}  # stored under another key: the values given now replace the unreadable ones
    store.set(args.system, {**kept, **values})
    print(
        _for_tenant(tenant, f"stored {len(values)} {args.system} value(s)")
        + f", encrypted: {', '.join(sorted(values))}"
    )
    return EXIT_OK


def cmd_webhooks(args: argparse.Namespace) -> int:
    from deltek_procore.connections import tenant_environment, variable
    from deltek_procore.sandbox.runner import WEBHOOK_SECRET_ENV

    if args.action == "serve":
        return _serve_webhooks(args)
    tenant = _tenant(args)
    secret = tenant_environment(tenant).get(WEBHOOK_SECRET_ENV)
    if not secret:
        raise CliError(
            f"set {variable(WEBHOOK_SECRET_ENV, tenant)} to the Authorization value Procore "
            "will send"
        )
    from deltek_procore import connections
    from deltek_procore.webhooks.registration import register_webhooks

    if not args.url:
        raise CliError("--url is required: the public https URL of `webhooks serve`")
    result = register_webhooks(connections.procore_client(tenant=tenant), args.url, secret)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_FAILED


def _serve_webhooks(args: argparse.Namespace) -> int:
    """One receiver for the tenant (or with --all-tenants every tenant): each on its own path
    (/webhooks/procore/<tenant>), today's path routing by the Authorization value."""
    from deltek_procore.tenants import load_tenants
    from deltek_procore.webhooks.routing import RoutingError, serve_tenants

    tenants = load_tenants() if getattr(args, "all_tenants", False) else [_tenant(args)]
    try:
        serve_tenants(
            tenants,
            _store,
            host=args.host,
            port=args.port,
            announce=lambda line: print(line, file=sys.stderr),
        )
    except RoutingError as exc:
        raise CliError(str(exc)) from None
    return EXIT_OK


def _sandbox_tenant(name: str | None) -> tuple[Tenant, str]:
    """The tenant a sandbox pair is for, and a note when it is not in the tenants file yet
    (`sandbox up --tenant NAME` is how a second tenant is tried before it is added)."""
    from deltek_procore.tenants import Tenant, load_tenants, tenants_path

    if name is None:
        return _tenant(), ""
    known = {t.name: t for t in load_tenants()}
    if name in known:
        return known[name], ""
    try:
        tenant = Tenant(name=name)
    except ValueError as exc:
        raise CliError(str(exc).splitlines()[-1].strip()) from None
    where = tenants_path() or "a tenants file (DELTEK_PROCORE_TENANTS)"
    return tenant, f"# tenant {name} is not in {where} yet: add `- name: {name}` to it"


def sandbox_exports(env: dict[str, str], tenant: Tenant) -> dict[str, str]:
    """The sandbox's variables as ``tenant`` reads them: suffixed ``__<TENANT>`` for a tenant
    of the tenants file, so a second sandbox pair can feed a second tenant."""
    from deltek_procore.tenants import TENANT_VARIABLES

    if tenant.implicit:
        return dict(env)
    return {(k + tenant.suffix() if k in TENANT_VARIABLES else k): v for k, v in env.items()}


def cmd_sandbox(args: argparse.Namespace) -> int:
    from deltek_procore.sandbox.runner import start_sandbox

    tenant, note = _sandbox_tenant(args.tenant)
    home = ensure_dagster_home()
    # each tenant's sandbox writes its own mapping file
    workdir = home if tenant.implicit else home / f"sandbox-{tenant.name}"
    receiver_store = None
    if not args.no_webhooks:
        from deltek_procore.state.store import StateStore

        receiver_store = StateStore(
            os.environ.get("DELTEK_PROCORE_STATE_URL") or None, tenant=tenant.name
        )
    box = start_sandbox(
        records=args.records, seed=args.seed, procore_port=args.procore_port,
        deltek_port=args.deltek_port, workdir=workdir, receiver_store=receiver_store,
        receiver_port=args.webhook_port, webhooks_permission=not args.no_webhooks_permission,
    )  # fmt: skip
    print(
        f"# sandbox up in {box.started_in_s:.1f} s: {args.records} records, seed {args.seed}",
        file=sys.stderr,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:  # from the first line printed: a Ctrl-C as soon as the exports appear stops cleanly
        print("# paste these into your shell (sandbox credentials only; they are not secrets):")
        if note:
            print(note)
        for key, value in sandbox_exports(box.env, tenant).items():
            print(f"export {key}='{value}'")
        if box.webhook_url and box.hook_id is not None:
            print(f"# webhook receiver: {box.webhook_url} (hook registered in the Procore sandbox)")
        elif box.webhook_url:
            print(f"# webhook receiver: {box.webhook_url}; " + box.webhook_note.replace("\n", "; "))
        print("# Ctrl-C stops the sandbox.", file=sys.stderr)
        sys.stdout.flush()
        while not stopped.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    box.stop()
    print("# sandbox stopped", file=sys.stderr)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from deltek_procore.sandbox.runner import sandbox_periods, start_sandbox

    tenant = _tenant(args)
    home = ensure_dagster_home()
    # The demo's sandbox starts empty, so its state starts empty too: the default state
    # database under DAGSTER_HOME, which `make dev`, `sandbox up`, `status` and the CLI use.
    os.environ.pop("DELTEK_PROCORE_STATE_URL", None)
    workdir = home
    if tenant.implicit:
        state_file = home / "deltek_procore_state.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{state_file}{suffix}").unlink(missing_ok=True)
    else:  # other tenants share the database: this tenant's part of it must be empty
        if _store(tenant).status_counts():
            raise CliError(
                f"tenant {tenant.name} already has records in the state database under {home}; "
                "the demo needs a tenant without any (a new tenant, or another DAGSTER_HOME)"
            )
        workdir = home / f"sandbox-{tenant.name}"
    print(
        _for_tenant(tenant, f"starting the sandbox ({args.records} records) ..."), file=sys.stderr
    )
    box = start_sandbox(records=args.records, seed=args.seed, workdir=workdir)
    try:
        os.environ.update(sandbox_exports(box.env, tenant))
        periods = sandbox_periods(box)
        print(
            f"syncing {len(periods)} months, {periods[0]} .. {periods[-1]}, in one Dagster run ...",
            file=sys.stderr,
        )
        ok, run_id, reports = run_sync_job(periods, tenant=tenant)
        code = _summarise(reports, run_id, as_json=False, plan_only=False)
        vouchers, entries = box.deltek.ap_vouchers(), box.deltek.journal_entries()
        print(
            f"\nDeltek sandbox now holds {len(vouchers)} AP vouchers and {len(entries)} journal entries."
        )
    finally:
        box.stop()
    print(
        "\nSee the same run in the Dagster UI (lineage, partitions, checks): `make dev`, then "
        "open http://127.0.0.1:3000 .\n"
        f"What waits for a person: DAGSTER_HOME={home} .venv/bin/deltek-procore status"
        + ("" if tenant.implicit else f" --tenant {tenant.name}")
        + "\n"
        "To run more syncs, start `deltek-procore sandbox up` in another terminal and paste "
        "its exports first."
    )
    return code


# ---- parser -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltek-procore",
        description="Move approved Procore spend into Deltek Vantagepoint, once, with a trail.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sync", help="run the pipeline for one accounting month")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.add_argument(
        "--json", action="store_true", help="machine-readable counts and per-record outcomes"
    )
    p.add_argument("--plan", action="store_true", help="print the plan; write nothing to Deltek")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("backfill", help="run the pipeline for a range of months in one run")
    p.add_argument("--from", dest="from_period", required=True, help="YYYY-MM")
    p.add_argument("--to", dest="to_period", required=True, help="YYYY-MM")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plan", action="store_true", help="print the plan; write nothing to Deltek")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("status", help="records by state; quarantined, failed and review items")
    p.add_argument("--period", help="YYYY-MM")
    p.add_argument("--kind", action="append", choices=KINDS)
    p.add_argument(
        "--state", action="append", help="states to list (default: the ones needing a person)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("replay", help="post one record again (safe: never twice) or explain it")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("id", type=int)
    p.add_argument("--explain", action="store_true", help="re-derive the document and say why")
    p.add_argument("--by", help="who asks (audit trail); default: the OS user")
    p.add_argument("--reason", default="replayed by an operator")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("ignore", help="put a record on the ignore list (a person's choice)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("id", type=int)
    p.add_argument("--reason", default="ignored by an operator")
    p.add_argument("--undo", action="store_true", help="take it off the list")
    p.add_argument("--by", help="who decides (audit trail); default: the OS user")
    p.set_defaults(func=cmd_ignore)

    p = sub.add_parser(
        "approve", help="post plans a sync stored under require_approval (if still current)"
    )
    p.add_argument("plan_ids", nargs="+", metavar="PLAN_ID")
    p.add_argument("--by", help="who approves (audit trail); default: the OS user")
    p.add_argument("--reason", default="approved")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser(
        "review", help="records waiting for a person: list, show, approve (posts), dismiss"
    )
    p.add_argument("action", choices=("list", "show", "approve", "dismiss"))
    p.add_argument("id", type=int, nargs="?", help="review item id (from `review list`)")
    p.add_argument("--by", help="who decides (audit trail); default: the OS user")
    p.add_argument("--reason", help="why (required to dismiss)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("mappings", help="coverage of the mapping file; proposed matches")
    p.add_argument("action", choices=("check", "suggest"))
    p.add_argument("--out", default="mappings.suggested.yaml")
    p.add_argument("--json", action="store_true", help="check: the same findings as JSON")
    p.set_defaults(func=cmd_mappings)

    p = sub.add_parser(
        "ping", help="check both credential sets against the real (or sandbox) systems"
    )
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", action="store_true", help="every check as JSON")
    p.set_defaults(func=cmd_ping)

    p = sub.add_parser("credentials", help="store credentials encrypted")
    p.add_argument("action", choices=("set",))
    p.add_argument("system", choices=("procore", "deltek"))
    p.set_defaults(func=cmd_credentials)

    p = sub.add_parser("webhooks", help="receive Procore webhooks, or register the hook in Procore")
    p.add_argument("action", choices=("serve", "register"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--url", help="public URL of the receiver (register)")
    p.add_argument(
        "--all-tenants",
        action="store_true",
        help="serve: one receiver for every tenant (each on /webhooks/procore/<tenant>)",
    )
    p.set_defaults(func=cmd_webhooks)

    p = sub.add_parser("sandbox", help="local Procore and Deltek simulators")
    p.add_argument("action", choices=("up",))
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--procore-port", type=int)
    p.add_argument("--deltek-port", type=int)
    p.add_argument("--webhook-port", type=int)
    p.add_argument("--no-webhooks", action="store_true", help="do not run the webhook receiver")
    p.add_argument(
        "--no-webhooks-permission",
        action="store_true",
        help="the Procore service account lacks the 'Webhooks API' permission: the webhooks "
        "config API answers 403 and no hook is registered (the sync still runs)",
    )
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser(
        "demo", help="sandbox + two-year sync + summary (the README's first command)"
    )
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_demo)
    for name, command in sub.choices.items():
        command.add_argument(
            "--tenant",
            metavar="NAME",
            help=TENANT_HELP.get(name, "the tenant to act on (default: the only one configured)"),
        )
    add_tenants_parser(sub)  # after the loop: `tenants` names its tenant as an argument
    return parser


TENANT_HELP = {
    "status": "one tenant's records (default: every tenant, one section each)",
    "credentials": "the tenant whose credentials these are (default: the only one configured)",
    "sandbox": "print the variables suffixed for this tenant (NAME__...), for a second "
    "sandbox pair; the tenant need not be in the tenants file yet",
}


def main(argv: Sequence[str] | None = None) -> int:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into a line
        from deltek_procore.connections import ConfigurationError
        from deltek_procore.credentials import CredentialsError
        from deltek_procore.mapping.config import MappingFileError
        from deltek_procore.tenants import TenantsFileError

        if isinstance(exc, MappingFileError):
            for line in exc.messages:
                print(f"deltek-procore: {line}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(
            exc, (CliError, ConfigurationError, CredentialsError, TenantsFileError, ValueError)
        ):
            # bad input: a period, an id, a file, a variable; the message says which
            print(f"deltek-procore: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"deltek-procore: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


# ---- tenants: list them, add one (issue 14) ----------------------------------------------
def add_tenants_parser(sub: Any) -> None:
    p = sub.add_parser("tenants", help="list the tenants, or add one to the tenants file")
    p.add_argument("action", choices=("list", "add"))
    p.add_argument("name", nargs="?", help="add: the new tenant's short name (lower case)")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="add: point the tenant at a sandbox pair of its own (own credentials), sync its "
        "two years beside today's tenant (kept as `default`) and print what was posted",
    )
    p.add_argument("--procore-company-id")
    p.add_argument("--procore-api-url", help="default https://api.procore.com")
    p.add_argument("--procore-auth-url", help="default https://login.procore.com/oauth/token")
    p.add_argument("--deltek-api-url", help="e.g. https://acme.deltekfirst.com/ACME/api")
    p.add_argument("--deltek-database")
    p.add_argument("--mappings", help="the tenant's mapping file")
    p.add_argument("--start-month", help="first monthly partition, YYYY-MM")
    p.add_argument("--nightly-cron")
    p.add_argument("--timezone")
    p.add_argument("--records", type=int, default=2000, help="--sandbox: seeded records")
    p.add_argument("--seed", type=int, default=42, help="--sandbox: same seed, same ids")
    p.set_defaults(func=cmd_tenants)


def cmd_tenants(args: argparse.Namespace) -> int:
    from deltek_procore import tenant_admin
    from deltek_procore.tenants import load_tenants

    if args.action == "list":
        rows = [
            {
                "tenant": t.name,
                "procore company": t.procore_company_id or "(env)",
                "deltek": t.deltek_api_url or "(env)",
                "database": t.deltek_database or "(env)",
                "mappings": t.mappings or "(env)",
            }
            for t in load_tenants()
        ]
        print(_table(rows, list(rows[0])))
        return EXIT_OK
    if not args.name:
        raise CliError("tenants add: name the new tenant (lower case letters, digits, '_')")
    ensure_dagster_home()
    path = tenant_admin.tenants_file_path()
    if args.sandbox:
        return _add_sandbox_tenant(args, path)
    given = {
        "procore_company_id": args.procore_company_id,
        "deltek_api_url": args.deltek_api_url,
        "deltek_database": args.deltek_database,
    }
    missing = ["--" + k.replace("_", "-") for k, v in given.items() if not v]
    if missing:
        raise CliError(f"tenants add {args.name}: {', '.join(missing)} required (or --sandbox)")
    mappings = str(Path(args.mappings).resolve()) if args.mappings else None
    tenant = tenant_admin.add_tenant(
        path,
        {
            "name": args.name, **given, "procore_api_url": args.procore_api_url,
            "procore_auth_url": args.procore_auth_url, "mappings": mappings,
            "start_month": args.start_month, "nightly_cron": args.nightly_cron,
            "timezone": args.timezone,
        },
    )  # fmt: skip
    print(f"added tenant {tenant.name} to {path}")
    print(
        f"its credentials: set {', '.join(tenant_admin.secret_variables(tenant))}, or run "
        f"`deltek-procore credentials set procore --tenant {tenant.name}` (and deltek)"
    )
    print(f"then: export DELTEK_PROCORE_TENANTS={path}; deltek-procore ping --tenant {tenant.name}")
    return EXIT_OK


def _add_sandbox_tenant(args: argparse.Namespace, path: Path) -> int:
    """The demo's second company: its own sandbox pair, in the tenants file, synced."""
    from deltek_procore import tenant_admin
    from deltek_procore.sandbox.runner import sandbox_credentials, sandbox_periods, start_sandbox
    from deltek_procore.tenants import TENANTS_ENV, Tenant, clear_cache

    Tenant(name=args.name)  # a bad name fails before a sandbox starts
    home = ensure_dagster_home()
    print(f"starting {args.name}'s own sandbox ({args.records} records) ...", file=sys.stderr)
    box = start_sandbox(
        records=args.records, seed=args.seed, workdir=home / f"sandbox-{args.name}",
        credentials=sandbox_credentials(args.name),
    )  # fmt: skip
    try:
        periods = sandbox_periods(box)
        env = box.env
        tenant = tenant_admin.add_tenant(
            path,
            {
                "name": args.name, "procore_company_id": env["PROCORE_COMPANY_ID"],
                "procore_api_url": env["PROCORE_API_URL"],
                "procore_auth_url": env["PROCORE_AUTH_URL"],
                "deltek_api_url": env["DELTEK_API_URL"],
                "deltek_database": env["DELTEK_DATABASE"], "mappings": str(box.mappings_path),
                "start_month": periods[0],
            },
        )  # fmt: skip
        os.environ[TENANTS_ENV] = str(path)
        clear_cache()
        for variable in tenant_admin.SECRET_VARIABLES:  # this process only; never written
            os.environ[variable + tenant.suffix()] = env[variable]
        print(
            f"added tenant {tenant.name} to {path}; syncing its {len(periods)} months, "
            f"{periods[0]} .. {periods[-1]}, in one Dagster run ...",
            file=sys.stderr,
        )
        ok, run_id, reports = run_sync_job(periods, tenant=tenant)
        code = _summarise(reports, run_id, as_json=False, plan_only=False)
        print(
            f"\n{tenant.name}'s Deltek sandbox now holds {len(box.deltek.ap_vouchers())} AP "
            f"vouchers and {len(box.deltek.journal_entries())} journal entries."
        )
    finally:
        box.stop()
    print(
        f"\nBoth companies, side by side: DELTEK_PROCORE_TENANTS={path} make dev\n"
        f"What waits for a person, by tenant: DELTEK_PROCORE_TENANTS={path} "
        f"DAGSTER_HOME={home} .venv/bin/deltek-procore status"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
