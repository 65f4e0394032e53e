"""Reading what a server sent: error bodies, Retry-After, amounts.

One copy for both APIs. Neither Procore's v1.x nor Vantagepoint standardise error bodies
(docs/api/procore.md "Error shapes", docs/api/deltek.md "Errors"): JSON in many shapes, a
JSON-encoded string, plain text on a 429, HTML from a gateway. `parse_error_body` turns
each into one line a person can read; it never raises.
"""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Literal

MAX_DETAIL = 500

# The human part of a JSON error, first match wins; the extras are appended after it.
_PRIMARY_KEYS = ("Message", "message", "error_description", "title", "error", "Error")
_EXTRA_KEYS = (
    "error",
    "detail",
    "Detail",
    "details",
    "errors",
    "Errors",
    "ModelState",
    "ExceptionMessage",
    "MessageDetail",
    "reason",
    "exception",
)


def parse_error_body(body: str | bytes | None, content_type: str | None = "") -> str:
    """One readable line from an error body of any shape ("" when there is nothing)."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return ""
    value: object = text
    # A JSON-encoded string may wrap JSON again (Deltek's PostTransFile does this).
    for _ in range(3):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    if isinstance(value, str):
        return _shorten(_from_text(value, content_type or ""))
    return _shorten(_from_json(value))


def _from_json(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return _join(_from_json(item) for item in value)
    if isinstance(value, dict):
        return _from_dict(value)
    return str(value)


def _from_dict(value: dict) -> str:
    nested = value.get("error")
    if isinstance(nested, dict) and "code" in nested:  # {"error": {"code", "message", ...}}
        head = _from_dict({k: v for k, v in nested.items() if k != "code"})
        return f"[{nested['code']}] {head}".strip() if nested.get("code") else head
    if isinstance(nested, str) and value.get("error_description"):  # OAuth 2.0
        return _join([f"{nested}: {_from_json(value['error_description'])}"])
    parts: list[str] = []
    for key in _PRIMARY_KEYS:
        if value.get(key):
            field = value.get("field") or value.get("Field") or value.get("property")
            text = _from_json(value[key])
            parts.append(f"{field}: {text}" if isinstance(field, str) and field else text)
            break
    for key in _EXTRA_KEYS:
        if value.get(key):
            parts.append(_from_mapping_or_json(value[key]))
    if parts:
        return _join(parts)
    return _from_mapping_or_json(value)


def _from_mapping_or_json(value: object) -> str:
    """`{"Vendor": ["is invalid"]}` -> "Vendor: is invalid"."""
    if isinstance(value, dict) and not any(key in value for key in _PRIMARY_KEYS):
        return _join(f"{key}: {_from_json(item)}" for key, item in value.items())
    return _from_json(value)


def _join(parts) -> str:
    seen: list[str] = []
    for part in parts:
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return "; ".join(seen)


def _from_text(text: str, content_type: str) -> str:
    if "html" in content_type.lower() or re.search(r"<\s*(html|!doctype|body|title)\b", text, re.I):
        return _from_html(text)
    return " ".join(text.split())


def _from_html(page: str) -> str:
    """Title plus the visible text of a gateway page, without markup."""
    match = re.search(r"<title[^>]*>(.*?)</title>", page, re.I | re.S)
    title = " ".join(html.unescape(match.group(1)).split()) if match else ""
    body = re.sub(r"<(script|style|head)\b.*?</\1\s*>", " ", page, flags=re.I | re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    body = " ".join(html.unescape(body).split())
    if title and body.startswith(title):
        body = body[len(title) :].strip()
    return _join([title, body[:200]])


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def looks_html(text: str, content_type: str = "") -> bool:
    head = text.lstrip()[:200].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html"))


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: a number or an HTTP date; None when absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


NOT_A_NUMBER = Decimal("NaN")


def to_decimal(
    value: object,
    default: Decimal | None = None,
    *,
    invalid: Literal["raise", "nan"] = "raise",
) -> Decimal | None:
    """An amount as Decimal, whether sent as 1275, 1275.5, "1,275.50", "$12", "96.36%" or
    "(5.00)" (accounting negative).

    None and blank give `default`. Anything else unreadable raises ValueError, or, with
    `invalid="nan"`, is Decimal("NaN"): a reader that must not stop on one bad record
    keeps the mark and lets translation quarantine it. Never a silently wrong amount.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return _invalid(value, invalid)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        return _invalid(value, invalid)
    text = value.strip().replace(",", "").replace("$", "").replace("%", "").strip()
    negative = text.startswith("(") and text.endswith(")")
    text = text.strip("()").strip()
    if not text:
        return default
    try:
        number = Decimal(text)
    except InvalidOperation:
        return _invalid(value, invalid)
    return -number if negative else number


def _invalid(value: object, invalid: str) -> Decimal:
    if invalid == "nan":
        return NOT_A_NUMBER
    raise ValueError(f"not an amount: {value!r}")
