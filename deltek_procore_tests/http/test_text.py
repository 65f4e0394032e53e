"""The one error-body parser, Retry-After and to_decimal both clients share."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from deltek_procore.deltek.errors import parse_error_body as deltek_parse
from deltek_procore.http.text import parse_error_body, retry_after_seconds, to_decimal
from deltek_procore.procore.errors import parse_error_body as procore_parse


def test_both_clients_use_the_one_parser():
    assert deltek_parse is parse_error_body and procore_parse is parse_error_body


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        # Procore shapes (docs/api/procore.md, error shapes)
        ('{"errors": "Project not permitted"}', "application/json", "Project not permitted"),
        ('{"errors": {"amount": ["must be positive"]}}', "", "amount: must be positive"),
        ('{"error": {"code": "NOT_FOUND", "message": "gone", "details": []}}', "", "[NOT_FOUND] gone"),
        ('{"message": "Not Found", "exception": "ActiveRecord"}', "", "Not Found; ActiveRecord"),
        ("You have surpassed the max number of requests.", "text/plain",
         "You have surpassed the max number of requests."),
        # Deltek shapes (docs/api/deltek.md, errors)
        ('{"Message":"Invalid Vendor"}', "", "Invalid Vendor"),
        (json.dumps(json.dumps({"Message": "wrapped"})), "", "wrapped"),
        ('{"error":"invalid_client","error_description":"bad secret"}', "",
         "invalid_client: bad secret"),
        ("<html><title>502 Bad Gateway</title><body>nginx</body></html>", "",
         "502 Bad Gateway; nginx"),
        (b"\xff\xfebroken bytes", "", "\ufffd\ufffdbroken bytes"),
        (None, None, ""),
    ],
)  # fmt: skip
def test_error_bodies_of_either_api(body, content_type, expected):
    assert parse_error_body(body, content_type) == expected


def test_retry_after_as_seconds_or_http_date():
    now = 1_700_000_000.0
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:30 GMT", now) == pytest.approx(10.0)
    assert retry_after_seconds("Mon, 01 Jan 2001 00:00:00 GMT", now) == 0.0  # past: now
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1,275.50", Decimal("1275.50")), ("$12.03", Decimal("12.03")), ("(5.00)", Decimal("-5.00")),
     ("96.36%", Decimal("96.36")), (0.1, Decimal("0.1")), (7, Decimal(7)), ("", None), (None, None)],
)  # fmt: skip
def test_to_decimal_reads_every_spelling(value, expected):
    assert to_decimal(value) == expected


def test_to_decimal_never_guesses_an_amount():
    with pytest.raises(ValueError, match="not an amount"):
        to_decimal("12abc")
    assert to_decimal("12abc", invalid="nan").is_nan()
    assert to_decimal(None, Decimal("0")) == Decimal("0")
    with pytest.raises(ValueError):
        to_decimal(True)
