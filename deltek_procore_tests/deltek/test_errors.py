import json
import pickle

import pytest

from deltek_procore.deltek.errors import (
    DeltekAmbiguousError,
    DeltekAuthError,
    DeltekError,
    parse_error_body,
)

GATEWAY_HTML = """<!DOCTYPE html><html><head><title>502 Bad Gateway</title>
<style>body{color:red}</style><script>var x = "<b>";</script></head>
<body><h1>502 Bad Gateway</h1><p>The upstream server &amp; proxy failed.</p></body></html>"""


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            '{"Message":"Invalid Vendor \'X\' on invoice 123"}',
            "",
            "Invalid Vendor 'X' on invoice 123",
        ),
        (
            '{"message":"Validation failed","detail":"Vendor is inactive"}',
            "",
            "Validation failed; Vendor is inactive",
        ),
        (
            '{"error":"invalid_grant","error_description":"Your login has been disabled."}',
            "",
            "invalid_grant: Your login has been disabled.",
        ),
        ('{"error":"unsupported_grant_type"}', "", "unsupported_grant_type"),
        (
            '{"errors":["Vendor is required","Period is closed"]}',
            "",
            "Vendor is required; Period is closed",
        ),
        (
            '{"errors":{"Vendor":["is required"],"Amount":"must be > 0"}}',
            "",
            "Vendor: is required; Amount: must be > 0",
        ),
        ('{"errors":"Batch already exists"}', "", "Batch already exists"),
        ('{"errors":[{"field":"Invoice","message":"too long"}]}', "", "Invoice: too long"),
        (json.dumps(json.dumps({"Message": "double encoded"})), "", "double encoded"),
        ('"just a JSON string"', "", "just a JSON string"),
        ("Service   Unavailable\r\n", "text/plain", "Service Unavailable"),
        ('[{"Message":"row 1 bad"},{"Message":"row 2 bad"}]', "", "row 1 bad; row 2 bad"),
        (
            '{"Message":"An error has occurred.","ExceptionMessage":"Timeout expired"}',
            "",
            "An error has occurred.; Timeout expired",
        ),
        ("", "", ""),
        ("{}", "application/json", ""),
    ],
)
def test_parse_error_body_shapes(body, content_type, expected):
    assert parse_error_body(body, content_type) == expected


def test_html_gateway_page_keeps_title_and_drops_markup():
    text = parse_error_body(GATEWAY_HTML.encode(), "text/html")
    assert text.startswith("502 Bad Gateway")
    assert "upstream server & proxy failed" in text
    assert "<" not in text and "color:red" not in text and "var x" not in text


def test_html_detected_without_content_type():
    assert parse_error_body("<html><title>Oops</title><body>x</body></html>") == "Oops; x"


def test_long_bodies_are_shortened():
    assert len(parse_error_body("x" * 5000)) == 500


def test_str_reads_like_a_sentence_with_hint():
    err = DeltekError(400, "post", "/DataEntry/apControl", "Invalid Vendor 'X' on invoice 123")
    assert str(err) == (
        "Deltek rejected POST DataEntry/apControl (400): Invalid Vendor 'X' on invoice 123"
        " — Deltek refused the data; fix what the message names (nothing was written)"
    )
    assert err.status == 400 and err.method == "POST" and err.path == "DataEntry/apControl"


def test_record_and_custom_hint_and_no_status():
    err = DeltekError(None, "GET", "firm", "connection failed", record="V1", hint="do X")
    assert str(err) == "Deltek call GET firm failed: connection failed [record V1] — do X"
    assert DeltekError(418, "GET", "x", "").message == "no details given"


def test_subclasses_read_differently_and_are_deltek_errors():
    amb = DeltekAmbiguousError(502, "POST", "DataEntry/apControl", "Bad Gateway", record="B1")
    assert isinstance(amb, DeltekError)
    assert str(amb).startswith(
        "Outcome unknown for Deltek POST DataEntry/apControl (502): Bad Gateway [record B1]"
    )
    assert "look the record up" in str(amb)
    auth = DeltekAuthError(400, "POST", "token", "bad password", hint="check DELTEK_PASSWORD")
    assert str(auth) == "Deltek sign-in failed: bad password — check DELTEK_PASSWORD"


def test_errors_pickle_round_trip():
    err = DeltekAmbiguousError(503, "PUT", "DataEntry/PostTransFile", "down", "B2", "h")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DeltekAmbiguousError
    assert (back.status, back.record, back.hint, str(back)) == (503, "B2", "h", str(err))
