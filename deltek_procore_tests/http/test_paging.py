"""Paginators: Link is the authority; without it a full page asks for the next; Total
never ends a listing; a page of repeats ends it; Deltek's q.maxrows rule."""

from __future__ import annotations

import pytest
from requests.utils import parse_header_links

from deltek_procore.http.paging import (
    LinkPaginator,
    Page,
    PageSizePaginator,
    PagingIgnored,
    next_page,
    wanted_ids,
)

API = "https://api.example.test"


def _links(header: str) -> str | None:
    """The rel="next" URL as requests' `resp.links` reads it."""
    return {link.get("rel"): link for link in parse_header_links(header)}.get("next", {}).get("url")


def page(n: int, *, link: str | None = None, headers: dict | None = None) -> Page:
    return Page(list(range(n)), headers or {}, next_url=_links(link) if link else None,
                has_link=link is not None)  # fmt: skip


def test_next_page_rules():
    link = (
        f'<{API}/x?page=1&per_page=5>; rel="first", <{API}/x?page=30&per_page=5>; rel="last", '
        f'<{API}/x?page=4&per_page=5>; rel="next"'
    )
    assert next_page(page(5, link=link), 3, 5) == 4
    assert next_page(page(2, link=link), 3, 5) == 4  # Link is the authority, even on a short page
    assert next_page(page(5, link=f'<{API}/x?page=1>; rel="first"'), 30, 5) is None
    assert next_page(page(5, link=f'<{API}/x?page=2>; rel="next"'), 7, 5) == 8  # never back
    # Total never ends a listing: a full page asks for the next whatever Total says.
    assert next_page(page(5, headers={"Total": "150", "Per-Page": "5"}), 30, 5) == 31
    assert next_page(page(4, headers={"Total": "10", "Per-Page": "5"}), 30, 5) is None
    assert next_page(page(100), 1, 100) == 2 and next_page(page(99), 1, 100) is None
    assert next_page(page(50, headers={"Per-Page": "50"}), 1, 100) == 2  # server capped
    assert next_page(page(0, headers={"Total": "999"}), 1, 100) is None


def serve(rows: list[dict], *, total=lambda n: n, link: bool = False, ignore_page=False):
    calls: list[int] = []

    def fetch(number: int, size: int) -> Page:
        calls.append(number)
        chunk = rows[:size] if ignore_page else rows[(number - 1) * size : number * size]
        more = number * size < len(rows)
        header = f'<{API}/x?page={number + 1}>; rel="next"' if link and more else None
        return Page(chunk, {"Total": str(total(len(rows)))}, next_url=_links(header) if header
                    else None, has_link=link)  # fmt: skip

    return fetch, calls


def test_a_total_lower_than_the_truth_without_link_loses_nothing():
    rows = [{"id": i} for i in range(250)]
    fetch, calls = serve(rows, total=lambda n: n // 2)
    assert list(LinkPaginator(fetch, per_page=100)) == rows
    assert calls == [1, 2, 3]


def test_an_exact_multiple_costs_one_empty_page():
    fetch, calls = serve([{"id": i} for i in range(200)])
    assert len(list(LinkPaginator(fetch, per_page=100))) == 200 and calls == [1, 2, 3]


def test_link_ends_the_listing_without_an_extra_call():
    fetch, calls = serve([{"id": i} for i in range(200)], link=True)
    assert len(list(LinkPaginator(fetch, per_page=100))) == 200 and calls == [1, 2]


def test_a_server_ignoring_page_costs_one_repeated_page_and_no_duplicates():
    repeats: list[int] = []
    fetch, calls = serve([{"id": i} for i in range(100)], ignore_page=True)
    pages = LinkPaginator(fetch, per_page=100, repeated=lambda: repeats.append(1))
    assert len(list(pages)) == 100 and calls == [1, 2] and repeats == [1]


def test_an_id_filter_yields_only_what_was_asked_and_stops_when_all_came():
    fetch, calls = serve([{"id": i} for i in range(500)])
    wanted = wanted_ids([("filters[id]", "3,7")])
    assert [r["id"] for r in LinkPaginator(fetch, per_page=100, wanted=wanted)] == [3, 7]
    assert calls == [1]
    assert wanted_ids([("filters[id][]", 1), ("filters[id][]", 2)]) == {"id:1", "id:2"}
    assert wanted_ids([("project_id", 1)]) is None


def deltek(rows: list[dict], *, ignore_page=False, honour_maxrows=True):
    sent: list[dict] = []

    def fetch(params):
        q = dict(params)
        sent.append(q)
        size, number = int(q["pageSize"]), int(q["page"])
        if ignore_page:
            limit = int(q.get("q.maxrows", size)) if honour_maxrows else size
            return rows[:limit]
        return rows[(number - 1) * size : number * size]

    return fetch, sent


def test_pagesize_pages_until_a_short_page_with_maxrows_on_ledgers():
    rows = [{"n": i} for i in range(5)]
    fetch, sent = deltek(rows)
    assert PageSizePaginator(fetch, size=2, maxrows=True).read() == rows
    assert [(q["page"], q["q.maxrows"]) for q in sent] == [(1, 2), (2, 4), (3, 6)]
    fetch, sent = deltek(rows)
    assert PageSizePaginator(fetch, size=2).read() == rows
    assert all("q.maxrows" not in q and "limit" not in q for q in sent)


def test_a_server_ignoring_page_but_honouring_maxrows_is_read_whole():
    rows = [{"n": i} for i in range(5)]
    fetch, _ = deltek(rows, ignore_page=True)
    assert PageSizePaginator(fetch, size=2, maxrows=True).read() == rows


def test_a_server_ignoring_paging_entirely_is_an_error_not_a_truncation():
    fetch, _ = deltek([{"n": i} for i in range(5)], ignore_page=True, honour_maxrows=False)
    with pytest.raises(PagingIgnored, match="only the first 2 rows"):
        PageSizePaginator(fetch, size=2).read()


def test_a_whole_listing_reports_the_rows_read_and_the_total_announced():
    counts: list[tuple[int, int | None]] = []
    fetch, _ = serve([{"id": i} for i in range(250)], total=lambda n: n // 2)
    assert len(list(LinkPaginator(fetch, per_page=100, counted=lambda *c: counts.append(c)))) == 250
    assert counts == [(250, 125)]  # all read, whatever Total said; the difference is reported


def test_an_id_read_reports_no_count_and_no_total_reads_as_none():
    counts: list[tuple[int, int | None]] = []
    fetch, _ = serve([{"id": i} for i in range(500)])
    wanted = wanted_ids([("filters[id]", "3,7")])
    list(LinkPaginator(fetch, per_page=100, wanted=wanted, counted=lambda *c: counts.append(c)))
    assert counts == []  # an id read stops early: nothing whole to compare
    pages = LinkPaginator(lambda n, s: page(3), per_page=100, counted=lambda *c: counts.append(c))
    assert len(list(pages)) == 3 and counts == [(3, None)]
