"""A small Deltek seed in the shape of SandboxData.deltek, for the simulator's own tests.

Kept tiny and hand-written so each validation rule has exactly one record that breaks it.
"""

from __future__ import annotations

import copy

_SEED: dict = {
    "company": "01",
    "active_period": 202611,
    "firms": [
        {"ClientID": "a" * 32, "Client": "ACME", "Name": "Acme Concrete LLC", "Status": "A",
         "ClientInd": "N", "VendorInd": "Y", "Vendor": "ACME", "FedID": "12-3456789"},
        {"ClientID": "b" * 32, "Client": "BOLT", "Name": "Bolt Steel Inc", "Status": "A",
         "ClientInd": "N", "VendorInd": "Y", "Vendor": "BOLT-01"},
        {"ClientID": "c" * 32, "Client": "OLDV", "Name": "Old Vendor Co", "Status": "I",
         "ClientInd": "N", "VendorInd": "Y", "Vendor": "OLDV"},
        {"ClientID": "d" * 32, "Client": "OWNER", "Name": "Owner Holdings", "Status": "A",
         "ClientInd": "Y", "VendorInd": "N", "Vendor": "OWNERX"},
    ],
    "projects": [
        {"WBS1": "2024001.00", "WBS2": "", "WBS3": "", "Name": "Main Street Garage",
         "Status": "A", "SubLevel": "N", "ChargeType": "R", "Org": "01:100"},
        {"WBS1": "2024002.00", "WBS2": "", "WBS3": "", "Name": "Harbor School",
         "Status": "A", "SubLevel": "Y", "ChargeType": "R", "Org": "01:200"},
        {"WBS1": "2024002.00", "WBS2": "01", "WBS3": "", "Name": "Phase 1",
         "Status": "A", "SubLevel": "N", "ChargeType": "R"},
        {"WBS1": "2024002.00", "WBS2": "02", "WBS3": "", "Name": "Phase 2 (closed)",
         "Status": "I", "SubLevel": "N", "ChargeType": "R"},
        {"WBS1": "2019009.00", "WBS2": "", "WBS3": "", "Name": "Old Mill",
         "Status": "I", "SubLevel": "N", "ChargeType": "R"},
    ],
    "accounts": [
        {"Account": "5100", "Name": "Subcontract Costs", "Type": 7, "Status": "A",
         "GlobalAccount": "N"},
        {"Account": "5200", "Name": "Material Costs", "Type": 7, "Status": "A",
         "GlobalAccount": "N"},
        {"Account": "2000", "Name": "Accounts Payable", "Type": 2, "Status": "A",
         "GlobalAccount": "Y"},
        {"Account": "2150", "Name": "Commitments Offset", "Type": 2, "Status": "A",
         "GlobalAccount": "Y"},
        {"Account": "5999", "Name": "Retired Costs", "Type": 7, "Status": "I",
         "GlobalAccount": "N"},
    ],
    # GLSummary activity: every account but 5200 (valid, nothing posted to it yet)
    "gl_history": [
        {"Period": 202510, "Account": "5100", "Amount": 2500.0},
        {"Period": 202511, "Account": "5100", "Amount": 750.0},
        {"Period": 202510, "Account": "2000", "Amount": -2500.0},
        {"Period": 202510, "Account": "2150", "Debit": 0, "Credit": 300.0},
        {"Period": 202401, "Account": "5999", "Amount": 40.0},
    ],
}  # fmt: skip


def deltek_seed() -> dict:
    """A fresh deep copy, so a test may mutate it freely."""
    return copy.deepcopy(_SEED)


def ap_batch(
    batch: str,
    vouchers: list[tuple[str, str, list[float]]],
    *,
    total: float | None = None,
    wbs: tuple[str, str, str] = ("2024001.00", " ", " "),
    account: str = "5100",
) -> dict:
    """An apControl body: one master per (vendor, invoice, line amounts)."""
    masters, details = [], []
    for index, (vendor, invoice, amounts) in enumerate(vouchers, start=1):
        key = f"{batch[:20]}M{index:04d}".ljust(32, "0")[:32]
        masters.append({"Batch": batch, "MasterPKey": key, "Vendor": vendor,
                        "Invoice": invoice, "InvoiceDate": "2026-11-03T00:00:00.000",
                        "TransDate": "2026-11-05T00:00:00.000", "LiabCode": "AP",
                        "BankCode": "OPER", "PayTerms": "Next", "Seq": index})  # fmt: skip
        for line, amount in enumerate(amounts, start=1):
            details.append({"Batch": batch, "MasterPKey": key, "PKey": f"{key[:24]}L{line:03d}",
                            "Seq": line, "Description": f"line {line}", "WBS1": wbs[0],
                            "WBS2": wbs[1], "WBS3": wbs[2], "Account": account,
                            "Amount": amount})  # fmt: skip
    if total is None:
        total = round(sum(d["Amount"] for d in details), 2)
    return {"Batch": batch, "Description": f"Procore {batch}", "Total": total, "Period": 0,
            "Company": "01", "Posted": "N", "apMaster": masters, "apDetail": details}  # fmt: skip


def je_batch(batch: str, ref_no: str, debit: float, credit: float, *, total: float | None = None
             ) -> dict:  # fmt: skip
    """A jeControl body with one entry: debit 5100 on a project, credit 2150."""
    lines = [
        {"Batch": batch, "RefNo": ref_no, "PKey": f"{ref_no}-D", "Seq": 1, "WBS1": "2024001.00",
         "Account": "5100", "DebitAmount": debit, "CreditAmount": 0},
        {"Batch": batch, "RefNo": ref_no, "PKey": f"{ref_no}-C", "Seq": 2, "WBS1": "",
         "Account": "2150", "DebitAmount": 0, "CreditAmount": credit},
    ]  # fmt: skip
    return {
        "Batch": batch, "Description": "Commitments", "Total": debit if total is None else total,
        "CreditsTotal": credit, "Period": 202611, "Company": "01",
        "jeMaster": [{"Batch": batch, "RefNo": ref_no, "TransDate": "2026-11-05T00:00:00.000",
                      "Description": "PO 7", "Type": "3"}],
        "jeDetail": lines,
    }  # fmt: skip
