from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests

from deltek_procore.deltek.filters import (
    MAX_URL_LENGTH,
    Filter,
    encode_params,
    filter_params,
    matches,
    needs_post_as_get,
)

NASTY = [
    'INV "7" & #12',
    "50% + 50/50 = 100?",
    "Ünïcödé 請求書 №5",
    "a+b c",
    "semi;colon'quote<tag>",
    "trailing space ",
    "[0][name]=x",
]


def test_filter_params_indexes_every_key_and_numbers_seq_from_one():
    params = filter_params(
        [
            Filter("Vendor", "ACME"),
            Filter("ModDate", "2026-01-01", opp=">=", condition="OR", type="datetime"),
        ]
    )
    assert params == [
        ("filterHash[0][name]", "Vendor"),
        ("filterHash[0][value]", "ACME"),
        ("filterHash[0][opp]", "="),
        ("filterHash[0][condition]", "AND"),
        ("filterHash[0][seq]", "1"),
        ("filterHash[1][name]", "ModDate"),
        ("filterHash[1][value]", "2026-01-01"),
        ("filterHash[1][opp]", ">="),
        ("filterHash[1][condition]", "OR"),
        ("filterHash[1][seq]", "2"),
        ("filterHash[1][type]", "datetime"),
    ]


def test_none_value_is_blank_and_numbers_are_text():
    params = dict(filter_params([Filter("WBS2", None), Filter("Period", 202611)]))
    assert params["filterHash[0][value]"] == ""
    assert params["filterHash[1][value]"] == "202611"


@pytest.mark.parametrize("value", NASTY)
def test_values_round_trip_through_a_prepared_request(value):
    params = filter_params([Filter("Invoice", value), Filter("Vendor", "V&1")])
    url = "https://acme.deltekfirst.com/ACME/api/PSALedger/AP"
    prepared = requests.Request("GET", f"{url}?{encode_params(params)}").prepare()
    query = urlsplit(prepared.url).query
    # A form decoder (plus = space) and a strict percent decoder read the same values.
    assert parse_qsl(query, keep_blank_values=True, strict_parsing=True) == params
    strict = [tuple(unquote(part) for part in pair.split("=", 1)) for pair in query.split("&")]
    assert strict == params
    # Nothing that would split or truncate the query survives unescaped.
    for char in ' "#+[]':
        assert char not in query


def test_encode_params_uses_utf8_percent_escapes():
    assert encode_params([("Invoice", "é #")]) == "Invoice=%C3%A9%20%23"


def test_post_as_get_threshold():
    url = "https://x/api/firm"
    short = "a" * (MAX_URL_LENGTH - len(url) - 1)
    assert not needs_post_as_get(url, short)
    assert needs_post_as_get(url, short + "b")


def test_matches_behaves_like_sql_server_equality():
    row = {"Vendor": "acme ", "Invoice": "INV-1", "Amount": "5"}
    assert matches(row, [Filter("Vendor", "ACME"), Filter("Invoice", "inv-1")])
    assert not matches(row, [Filter("Vendor", "ACME"), Filter("Invoice", "INV-2")])
    # Non-equality operators and OR sets are left to the server.
    assert matches(row, [Filter("Amount", "9", opp=">=")])
    assert matches(row, [Filter("Vendor", "X", condition="OR"), Filter("Invoice", "INV-1")])
    assert not matches({}, [Filter("Vendor", "ACME")])
